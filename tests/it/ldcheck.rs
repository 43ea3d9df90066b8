//! Integration tests for ldcheck. See tests/lib.rs for the skip rule.

#[allow(unused_imports)]
use dockhand_tests::*;
