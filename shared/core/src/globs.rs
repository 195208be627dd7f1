//! Glob patterns from configuration (`*` matches any text, `/` included),
//! built in one place so that every option reports a bad pattern the same way.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::Error;

/// Builds a set from patterns, ignoring blank ones; `None` when there are
/// none. `what` names the option in errors (`human-role pattern`, ...).
pub(crate) fn glob_set<I, S>(patterns: I, what: &str) -> Result<Option<GlobSet>, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut builder = GlobSetBuilder::new();
    let mut any = false;
    for pattern in patterns {
        let pattern = pattern.as_ref().trim();
        if pattern.is_empty() {
            continue;
        }
        let glob = Glob::new(pattern)
            .map_err(|e| Error::shape(format!("{what} `{pattern}` is not a valid glob: {e}")))?;
        builder.add(glob);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| Error::shape(format!("{what}s: {e}")))
}
