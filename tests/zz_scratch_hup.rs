mod common;
use common::amqp::*;
#[test]
fn scratch() {
    let pw = std::fs::read_to_string("/var/lib/hup-lab/secrets/app-password").unwrap();
    let t = Target::new("10.215.0.100", 5672, "app", pw.trim_end());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = std::time::Instant::now();
    let r = rt.block_on(round_trip(&t, "ha.smoke", "scratch", 100));
    eprintln!("{t} {r:?} {:?}", s.elapsed());
    let bad = Target::new("10.215.0.100", 5672, "app", "wrong");
    let s = std::time::Instant::now();
    let r = rt.block_on(round_trip(&bad, "ha.smoke", "scratch", 1));
    eprintln!("{r:?} {:?}", s.elapsed());
    let dead = Target::new("10.215.0.99", 5672, "app", "wrong");
    let s = std::time::Instant::now();
    let r = rt.block_on(round_trip(&dead, "ha.smoke", "scratch", 1));
    eprintln!("{r:?} {:?}", s.elapsed());
}
