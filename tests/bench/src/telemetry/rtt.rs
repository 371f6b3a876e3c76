//! RTT: the record's smoothed RTT beside the `tcpi_rtt` the sender reads from
//! `MPTCP_FULL_INFO` at the same moment, with netem delays of 20 ms and 50 ms on the two
//! paths (the host kernel has no netem: the VM measures this part). Target: within 10%.

use std::{net::IpAddr, time::Duration};

use mptcpd_tests::{ebpf::cgroup::TestCgroup, net::two_hosts::IpVersion};

use super::{
    Figure, hosts, median, not_measured, observer::Observer, peer::Sender, server_addr, tc, within,
};

const PART: &str = "rtt";
/// (path, one-way delay added on the client's egress).
const DELAYS: [(u8, &str); 2] = [(1, "20ms"), (2, "50ms")];
/// Paired readings per path; one every [`SAMPLE_EVERY`].
const SAMPLES: usize = 15;
const SAMPLE_EVERY: Duration = Duration::from_millis(300);

pub(super) fn run() -> anyhow::Result<Vec<Figure>> {
    let hosts = hosts("mptcpd-b-rtt")?;
    for (path, delay) in DELAYS {
        let dev = format!("c{path}");
        if let Err(e) = tc(
            &hosts.client,
            &["qdisc", "add", "dev", &dev, "root", "netem", "delay", delay],
        ) {
            let names = ["srtt path 1 (20 ms)", "srtt path 2 (50 ms)"];
            return Ok(not_measured(
                PART,
                &names,
                &format!(
                    "no netem on this kernel ({e:#}): `cargo xtask bench telemetry` measures it in the 6.12 VM"
                ),
            ));
        }
    }
    let cgroup = TestCgroup::new("mptcpd-b-rtt")?;
    let observer = Observer::attach(&cgroup, &hosts.client, false)?;
    let listener = hosts
        .server
        .run(|| mptcpd_tests::sockets::mptcp::listen(server_addr(5301)))??;
    std::thread::scope(|scope| -> anyhow::Result<Vec<Figure>> {
        let receiver = scope.spawn(|| super::peer::receive_one(&listener));
        let mut sender = Sender::start(&hosts.client, &cgroup, server_addr(5301), 1 << 40)?;
        let result = sample(&observer, &mut sender);
        sender.kill();
        let _received = receiver.join();
        result
    })
}

/// Pairs of (telemetry, `tcpi_rtt`) per path, then a figure per path.
fn sample(observer: &Observer, sender: &mut Sender) -> anyhow::Result<Vec<Figure>> {
    sender.wait_all_carry(256 << 10)?;
    let mut pairs: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..SAMPLES {
        let info = sender.info()?;
        let records = observer.telemetry.subflows(observer.netns_cookie)?;
        for (i, (path, _)) in DELAYS.iter().enumerate() {
            let local = IpVersion::V4.addr(*path, 1);
            let at = |ip: IpAddr| ip == local;
            if let (Some(sf), Some(record)) = (
                info.iter().find(|s| at(s.local.ip())),
                records.iter().find(|r| at(r.local().ip())),
            ) {
                pairs[i].push((f64::from(record.srtt_us), f64::from(sf.rtt_us)));
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    let mut figures = Vec::new();
    for (i, (path, delay)) in DELAYS.iter().enumerate() {
        let mut telemetry: Vec<f64> = pairs[i].iter().map(|p| p.0).collect();
        let mut kernel: Vec<f64> = pairs[i].iter().map(|p| p.1).collect();
        let mut ratios: Vec<f64> = pairs[i].iter().map(|p| p.0 / p.1).collect();
        let worst = ratios
            .iter()
            .copied()
            .max_by(|a, b| (a - 1.0).abs().total_cmp(&(b - 1.0).abs()))
            .unwrap_or(f64::NAN);
        let mut figure = Figure::compared(
            PART,
            &format!("srtt path {path} ({delay} netem), median"),
            "us",
            median(&mut telemetry),
            (
                "tcpi_rtt (MPTCP_FULL_INFO) at the same moment, median",
                median(&mut kernel),
            ),
            ("within 10%", |r| within(r, 10.0)),
        );
        let median_ratio = median(&mut ratios);
        figure.note = format!(
            "{} paired readings; median of the ratios {median_ratio:.3}, worst {worst:.3}",
            pairs[i].len()
        );
        figures.push(figure);
    }
    Ok(figures)
}
