// peerlited: the peer daemon. Runs one node per configured database beside applications
// that keep using plain SQLite. Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 on a
// runtime failure, 2 on a bad command line or configuration, 3 when another peerlited
// already serves the database, 4 when the database is another node's file (a copy).
#include "daemon.hpp"

int main(int argc, char** argv) {
    return peerlite::peer::daemon_main(argc, argv);
}
