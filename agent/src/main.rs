//! `berth`: keeps a machine's containers in the state its Compose manifests
//! declare.

fn main() {
    println!("berth {}", env!("CARGO_PKG_VERSION"));
}
