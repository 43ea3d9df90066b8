//! Directory-fd based file operations (openat, fchownat without following links). Owned by the runas work.
