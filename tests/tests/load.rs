//! The load run (tests/src/load.rs) at a size the native tier can afford: clients at
//! once against the Docker API, pulls of images that share a layer, the engine killed
//! and restarted in the middle; then every request was answered or refused cleanly and
//! nothing is left behind. `cargo xtask bench load` runs it with 50 clients for 5
//! minutes.

use std::time::Duration;

use berth_tests::load::{self, LoadConfig};

#[test]
fn clients_at_once_and_a_kill_leave_nothing_behind() {
    let config = LoadConfig { clients: 12, duration: Duration::from_secs(40), kill_at: Duration::from_secs(15), images: 3 };
    let report = load::run("load", &config);
    report.print();
    assert!(report.unclean.is_empty(), "requests not answered or refused cleanly: {:#?}", report.unclean);
    assert!(report.server_errors.is_empty(), "server errors: {:#?}", report.server_errors);
    assert_eq!(report.check, None, "berth system check");
    assert!(report.leftovers.is_empty(), "left behind: {:#?}", report.leftovers);
    // The run did the work it claims, on both sides of the kill.
    assert!(report.containers_run >= 10, "{report:?}");
    assert!(report.pulls_done >= 3, "{report:?}");
    assert!(report.succeeded_after_restart >= 10, "{report:?}");
}
