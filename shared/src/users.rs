//! /etc/passwd and /etc/group parsing and USER[:GROUP] resolution, without
//! NSS, so it works in FROM scratch images. Owned by the runas work.
