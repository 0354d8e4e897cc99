//! STUB: replaced by the benchmark work (issue 7).

fn main() {
    eprintln!("trace-store-bench: not implemented yet");
    std::process::exit(2);
}
