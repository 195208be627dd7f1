//! Any text as a PartiQL statement: a target or `None`, never a panic, and a
//! target is always a non-empty piece of the statement.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Some(stmt) = ddb_audit_core::partiql::parse(text) {
        assert!(!stmt.table.is_empty());
        assert!(text.contains(stmt.table));
        if let Some(index) = stmt.index {
            assert!(!index.is_empty() && text.contains(index));
        }
    }
});
