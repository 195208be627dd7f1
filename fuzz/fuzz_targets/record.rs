//! Any text as one CloudTrail record: the fast scanner answers only as
//! serde_json would (same view, same length); then parse the borrowed view,
//! attribute it, fold the call and plan its summary-table writes; never a
//! panic.
#![no_main]

use ddb_audit_core::attribute::{attribute, Outcome, Rules};
use ddb_audit_core::record::RecordView;
use ddb_audit_core::rollup::Batch;
use ddb_audit_core::scan;
use ddb_audit_core::summary::{plan, Retention};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Some((view, len)) = scan::record(text) {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<RecordView<'_>>();
        match stream.next() {
            Some(Ok(expected)) => {
                assert_eq!(format!("{view:?}"), format!("{expected:?}"));
                assert_eq!(len, stream.byte_offset());
            }
            other => panic!("the scanner read what serde_json refuses: {other:?}"),
        }
    }
    let Ok(view) = serde_json::from_str::<RecordView<'_>>(text) else {
        return;
    };
    if let Outcome::Call(call) = attribute(&view, &Rules::default()) {
        assert!(!call.tables.is_empty(), "a call counts somewhere");
        let mut batch = Batch::default();
        batch.fold(&call);
        let _ = plan("fuzz", &batch, Retention { daily_days: 400 });
    }
});
