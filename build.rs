//! Marks the peer tests as ignored (reported as such, not as passed) when
//! `EVIDENT_SKIP_PEERS=1`; refuses that setting under `CI=true`, where a skipped peer is a
//! failure.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(evident_skip_peers)");
    println!("cargo::rerun-if-env-changed=EVIDENT_SKIP_PEERS");
    println!("cargo::rerun-if-env-changed=CI");
    if std::env::var("EVIDENT_SKIP_PEERS").as_deref() == Ok("1") {
        if std::env::var("CI").as_deref() == Ok("true") {
            println!(
                "cargo::error=EVIDENT_SKIP_PEERS=1 under CI=true: CI runs every test against the real peers"
            );
        }
        println!("cargo::rustc-cfg=evident_skip_peers");
    }
}
