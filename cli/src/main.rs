//! `ddb-audit`: see the crate documentation of `ddb_audit_cli`.

// `analyze` builds and frees a few small allocations per row, by the tens
// of thousands: mimalloc does that in a fraction of the system allocator's
// time (README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = ddb_audit_cli::run(std::env::args_os(), &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}
