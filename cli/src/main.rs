//! `ddb-audit`: see the crate documentation of `ddb_audit_cli`.

fn main() {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code =
        ddb_audit_cli::run_then_exit(std::env::args_os(), &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}
