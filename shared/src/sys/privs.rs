//! Privileges: setgroups/setgid/setuid, read-back, capabilities, no_new_privs, subreaper. Owned by the runas work.
