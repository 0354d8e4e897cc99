//! STUB: replaced by the CLI work (issue 6).

fn main() {
    eprintln!("trace-store: not implemented yet");
    std::process::exit(2);
}
