// Catch2's runner for every test program. --rng-seed N replays the random tests: each
// prints the seed of a failing history, and Catch::rngSeed() is their base seed.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
