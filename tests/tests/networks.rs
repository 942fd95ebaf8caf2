//! Networks, DNS and published ports on the real crun and the kernel's bridges, veths
//! and nftables, all inside a network namespace the test made (the engine's): nothing
//! touches the machine's own network. After every test the namespace holds exactly
//! what it held before (interfaces, addresses, routes, Berth's nftables table), and no
//! container network namespace is left.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::fixtures::{self, Entry};
use berth_tests::native::NativeEngine;
use serde_json::{json, Value};

const IMAGE: &str = "berth.test/busybox:net";

/// The static UDP helper (busybox has no UDP server); the native tier builds it.
fn netprobe() -> PathBuf {
    berth_tests::root().join("target/x86_64-unknown-linux-musl/debug/berth-netprobe")
}

/// An isolated engine with the test image loaded and the default bridge set up; returns
/// it with its network footprint at that point.
/// No upstream resolver unless a test runs one: names the engine does not know fail
/// at once instead of waiting on the machine's resolver, which a test must not use.
fn engine(test: &str) -> (NativeEngine, String) {
    engine_with(test, &[("BERTH_DNS_UPSTREAM", "")])
}

fn engine_with(test: &str, env: &[(&str, &str)]) -> (NativeEngine, String) {
    let engine = NativeEngine::start_isolated_with(test, env);
    let probe = std::fs::read(netprobe()).expect("berth-netprobe (built by `cargo xtask test native`)");
    let config = json!({"ExposedPorts": {"80/tcp": {}}});
    let image = fixtures::container_image_with(config, vec![Entry::File { path: "bin/netprobe".into(), mode: 0o755, data: probe }]);
    let archive = engine.home.join("image.tar");
    std::fs::write(&archive, fixtures::oci_archive(&image, IMAGE)).expect("write archive");
    ok(&engine, &["load", "-i", &archive.display().to_string()]);
    // The default bridge comes with the first container on it; it stays, like docker0.
    ok(&engine, &["run", "--rm", IMAGE, "true"]);
    // The kernel frees an ended namespace (and so its veth pair) a moment later.
    wait_until("the first container's veth to go", || !engine.network_footprint().contains("veth"));
    let baseline = engine.network_footprint();
    assert!(baseline.contains("berth0"), "{baseline}");
    (engine, baseline)
}

fn berth(engine: &NativeEngine, args: &[&str]) -> (i32, String, String) {
    let out = engine.berth(args);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(engine: &NativeEngine, args: &[&str]) -> String {
    let (code, stdout, stderr) = berth(engine, args);
    assert_eq!(code, 0, "berth {args:?} failed: {stderr}");
    stdout
}

fn fails(engine: &NativeEngine, args: &[&str]) -> String {
    let (code, stdout, stderr) = berth(engine, args);
    assert_ne!(code, 0, "berth {args:?} should fail: {stdout}");
    stderr
}

fn inspect(engine: &NativeEngine, args: &[&str]) -> Value {
    serde_json::from_str::<Value>(&ok(engine, args)).expect("json")[0].clone()
}

fn short_id(engine: &NativeEngine, name: &str) -> String {
    inspect(engine, &["inspect", name])["Id"].as_str().expect("id")[..12].to_owned()
}

// `sh -c "busybox timeout N busybox wget ...; exit $?"` in the tests below: the
// compound command keeps wget from being PID 1, which ignores the timeout's signal.

/// An HTTP server answering /hostname with the container's hostname (its short id).
fn web(engine: &NativeEngine, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    ok(engine, &args);
    short_id(engine, name)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes every container and user network, then checks the namespace is as it was.
fn assert_torn_down(engine: &NativeEngine, baseline: &str) {
    for id in ok(engine, &["ps", "-aq", "--no-trunc"]).lines() {
        ok(engine, &["rm", "-f", id]);
    }
    for name in ok(engine, &["network", "ls", "--filter", "type=custom", "--format", "{{.Name}}"]).lines() {
        ok(engine, &["network", "rm", name]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.network_footprint() != baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(engine.network_footprint(), baseline, "the engine's namespace is not as it was");
    let netns = engine.home.join("engine/netns");
    let left: Vec<_> = std::fs::read_dir(&netns).expect("netns dir").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "network namespaces left: {left:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mountinfo.contains(&netns.display().to_string()), "a namespace mount is left");
}

#[test]
fn user_networks_resolve_names_and_aliases_and_never_across_networks() {
    let (engine, baseline) = engine("net-dns");
    ok(&engine, &["network", "create", "--subnet", "10.77.0.0/24", "--label", "tier=front", "front"]);
    ok(&engine, &["network", "create", "back"]);
    let web1 = web(&engine, "web1", &["--network", "front", "--network-alias", "www"]);
    let web2 = web(&engine, "web2", &["--network", "front", "--network-alias", "www"]);

    // By name, by alias (two containers behind it), by short id.
    let by_name = ok(&engine, &["run", "--rm", "--network", "front", IMAGE, "busybox", "wget", "-qO-", "http://web1/hostname"]);
    assert_eq!(by_name.trim(), web1);
    let alias = ok(&engine, &["run", "--rm", "--network", "front", IMAGE, "busybox", "nslookup", "www"]);
    assert!(alias.contains("10.77.0.2") && alias.contains("10.77.0.3"), "{alias}");
    let by_id = ok(&engine, &["run", "--rm", "--network", "front", IMAGE, "busybox", "wget", "-qO-", &format!("http://{web2}/hostname")]);
    assert_eq!(by_id.trim(), web2);
    let resolv = ok(&engine, &["run", "--rm", "--network", "front", IMAGE, "cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with("nameserver 10.77.0.1\n"), "{resolv}");

    // From another network: no name, no route to the address.
    let (code, out, err) = berth(&engine, &["run", "--rm", "--network", "back", IMAGE, "busybox", "nslookup", "web1"]);
    assert_ne!(code, 0, "web1 resolved from another network: {out}");
    assert!(!out.contains("10.77.0.2"), "{out}{err}");
    let (code, _, _) =
        berth(&engine, &["run", "--rm", "--network", "back", IMAGE, "sh", "-c", "busybox timeout 2 busybox wget -qO- http://10.77.0.2/hostname; exit $?"]);
    assert_ne!(code, 0, "traffic crossed from one network to another");

    // Docker's JSON shapes.
    let settings = &inspect(&engine, &["inspect", "web1"])["NetworkSettings"]["Networks"]["front"];
    assert_eq!(settings["IPAddress"], "10.77.0.2");
    assert_eq!(settings["Gateway"], "10.77.0.1");
    assert_eq!(settings["IPPrefixLen"], 24);
    assert_eq!(settings["MacAddress"], "02:42:0a:4d:00:02");
    assert!(settings["Aliases"].as_array().expect("aliases").contains(&json!("www")), "{settings}");
    let network = inspect(&engine, &["network", "inspect", "front"]);
    assert_eq!(network["Driver"], "bridge");
    assert_eq!(network["IPAM"]["Config"][0], json!({"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}));
    assert_eq!(network["Labels"], json!({"tier": "front"}));
    let members: Vec<&str> = network["Containers"].as_object().expect("containers").values().map(|c| c["Name"].as_str().expect("name")).collect();
    assert_eq!(members.len(), 2, "{network}");
    assert!(members.contains(&"web1") && members.contains(&"web2"));
    let listed = ok(&engine, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for line in ["back bridge", "bridge bridge", "front bridge", "host host", "none null"] {
        assert!(listed.contains(line), "{listed}");
    }

    // Bad requests, and nothing removed while in use.
    assert!(fails(&engine, &["network", "rm", "front"]).contains("active endpoints"));
    assert!(fails(&engine, &["network", "rm", "bridge"]).contains("pre-defined"));
    assert!(fails(&engine, &["network", "create", "front"]).contains("already exists"));
    assert!(fails(&engine, &["network", "create", "--subnet", "10.77.0.128/25", "clash"]).contains("overlaps"));
    assert!(fails(&engine, &["network", "create", "--subnet", "10.78.0.1/24", "hostbits"]).contains("host bits"));
    assert!(fails(&engine, &["run", "--rm", "--network", "nowhere", IMAGE, "true"]).contains("network nowhere not found"));
    assert!(fails(&engine, &["run", "--rm", "--network-alias", "x", IMAGE, "true"]).contains("user defined networks"));
    assert!(fails(&engine, &["run", "--rm", "--network", "back", "--ip", "172.30.0.9", IMAGE, "true"]).contains("user configured subnets"));
    assert!(fails(&engine, &["run", "--rm", "--network", "front", "--ip", "10.77.0.2", IMAGE, "true"]).contains("already in use"));
    let fixed = ok(&engine, &["run", "--rm", "--network", "front", "--ip", "10.77.0.50", IMAGE, "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(fixed.contains("10.77.0.50/24"), "{fixed}");
    assert_torn_down(&engine, &baseline);
}

/// A namespace outside the engine's, reached through a veth (192.0.2.1 on the engine's
/// side, 192.0.2.2 outside) with no route back to container subnets: only NAT'd
/// traffic gets answers. It serves HTTP on 192.0.2.2:80.
struct Outside {
    holder: Child,
    server: Child,
    _dir: PathBuf,
}

impl Outside {
    fn new(engine: &NativeEngine) -> Outside {
        let mut holder = Command::new("unshare").args(["--net", "--", "sleep", "infinity"]).stdin(Stdio::null()).spawn().expect("unshare");
        let pid = holder.id();
        wait_until("the outside namespace", || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep"));
        let outside = |args: &[&str]| {
            let status = Command::new("nsenter").arg(format!("--net=/proc/{pid}/ns/net")).arg("--").args(args).status().expect("nsenter");
            assert!(status.success(), "{args:?}");
        };
        let (done, out) = engine.in_netns(&["ip", "link", "add", "bx0", "type", "veth", "peer", "name", "by0", "netns", &pid.to_string()]);
        if !done {
            let _ = holder.kill();
            panic!("veth to the outside: {out}");
        }
        assert!(engine.in_netns(&["ip", "addr", "add", "192.0.2.1/24", "dev", "bx0"]).0);
        assert!(engine.in_netns(&["ip", "link", "set", "bx0", "up"]).0);
        outside(&["ip", "addr", "add", "192.0.2.2/24", "dev", "by0"]);
        outside(&["ip", "link", "set", "by0", "up"]);
        outside(&["ip", "link", "set", "lo", "up"]);
        let dir = std::env::temp_dir().join(format!("berth-outside-{pid}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("hello"), "from outside\n").expect("file");
        let server = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["--", "busybox", "httpd", "-f", "-p", "192.0.2.2:80", "-h"])
            .arg(&dir)
            .spawn()
            .expect("httpd");
        let (mut reachable, mut tries) = (false, 0);
        while !reachable && tries < 100 {
            reachable = engine.in_netns(&["busybox", "wget", "-qO-", "http://192.0.2.2/hello"]).0;
            tries += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(reachable, "the outside server did not come up");
        Outside { holder, server, _dir: dir }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // The veth pair ends with the namespace.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

#[test]
fn containers_reach_outside_through_nat_and_internal_networks_do_not() {
    let (engine, _) = engine("net-nat");
    let outside = Outside::new(&engine);
    let baseline = engine.network_footprint();
    ok(&engine, &["network", "create", "open"]);
    ok(&engine, &["network", "create", "--internal", "sealed"]);
    for network in ["bridge", "open"] {
        let got = ok(&engine, &["run", "--rm", "--network", network, IMAGE, "sh", "-c", "busybox timeout 5 busybox wget -qO- http://192.0.2.2/hello; exit $?"]);
        assert_eq!(got, "from outside\n", "on {network}");
    }
    let (code, out, _) =
        berth(&engine, &["run", "--rm", "--network", "sealed", IMAGE, "sh", "-c", "busybox timeout 2 busybox wget -qO- http://192.0.2.2/hello; exit $?"]);
    assert_ne!(code, 0, "an internal network reached outside: {out}");
    let routes = ok(&engine, &["run", "--rm", "--network", "sealed", IMAGE, "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    // Containers on an internal network still reach each other.
    let id = web(&engine, "inside", &["--network", "sealed"]);
    assert_eq!(ok(&engine, &["run", "--rm", "--network", "sealed", IMAGE, "busybox", "wget", "-qO-", "http://inside/hostname"]).trim(), id);
    assert_torn_down(&engine, &baseline);
    drop(outside);
}

#[test]
fn published_ports_answer_tcp_and_udp_on_loopback_and_from_containers() {
    let (engine, baseline) = engine("net-ports");
    let id = web(&engine, "site", &["-p", "8080:80", "-p", "127.0.0.1:8081:80"]);
    let (done, got) = engine.in_netns(&["busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"]);
    assert!(done, "{got}");
    assert_eq!(got.trim(), id);
    assert_eq!(engine.in_netns(&["busybox", "wget", "-qO-", "http://127.0.0.1:8081/hostname"]).1.trim(), id);
    let ports = ok(&engine, &["port", "site"]);
    // A port on every address is bound on IPv4 and IPv6, as docker binds it.
    assert_eq!(ports, "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n80/tcp -> 127.0.0.1:8081\n", "{ports}");
    let ps = ok(&engine, &["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains("site 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:8081->80/tcp"), "{ps}");
    let bound = &inspect(&engine, &["inspect", "site"])["NetworkSettings"]["Ports"]["80/tcp"];
    assert_eq!(bound[0], json!({"HostIp": "0.0.0.0", "HostPort": "8080"}));
    assert_eq!(bound[1], json!({"HostIp": "::", "HostPort": "8080"}));
    let (done, got) = engine.in_netns(&["busybox", "wget", "-qO-", "http://[::1]:8080/hostname"]);
    assert!(done, "{got}");
    assert_eq!(got.trim(), id);

    // UDP.
    ok(&engine, &["run", "-d", "--name", "echo", "-p", "5353:53/udp", IMAGE, "netprobe", "udp-echo", "53"]);
    wait_until("the UDP echo server", || ok(&engine, &["logs", "echo"]).contains("listening"));
    let probe = netprobe().display().to_string();
    let (done, answer) = engine.in_netns(&[&probe, "udp-ask", "127.0.0.1:5353", "ping"]);
    assert!(done, "{answer}");
    assert_eq!(answer.trim(), "echo:ping");

    // Hairpin: another container reaches the published port through its gateway.
    let gateway = inspect(&engine, &["network", "inspect", "bridge"])["IPAM"]["Config"][0]["Gateway"].as_str().expect("gw").to_owned();
    let via = ok(&engine, &["run", "--rm", IMAGE, "busybox", "wget", "-qO-", &format!("http://{gateway}:8080/hostname")]);
    assert_eq!(via.trim(), id);

    // -P: the image's EXPOSE on a free port.
    let all = web(&engine, "all", &["-P"]);
    let mapped = ok(&engine, &["port", "all", "80"]);
    let url = format!("http://{}/hostname", mapped.lines().next().unwrap_or_default());
    assert_eq!(engine.in_netns(&["busybox", "wget", "-qO-", &url]).1.trim(), all);

    // A port in use: a clear error, the container stays created, nothing is left.
    let err = fails(&engine, &["run", "-d", "--name", "clash", "-p", "8080:80", IMAGE, "sleep", "10"]);
    assert!(err.contains("0.0.0.0:8080") && err.contains("port is already allocated"), "{err}");
    assert_eq!(inspect(&engine, &["inspect", "clash"])["State"]["Status"], "created");
    assert!(fails(&engine, &["run", "--rm", "-p", "80/sctp", IMAGE, "true"]).contains("tcp or udp"));

    // Stopping a container closes its ports.
    ok(&engine, &["stop", "-t", "1", "site"]);
    assert!(!engine.in_netns(&["busybox", "timeout", "2", "busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"]).0, "a stopped container still answers");
    assert!(ok(&engine, &["port", "site"]).is_empty());
    assert_torn_down(&engine, &baseline);
}

#[test]
fn connect_and_disconnect_take_effect_on_running_containers() {
    let (engine, baseline) = engine("net-connect");
    ok(&engine, &["network", "create", "a"]);
    ok(&engine, &["network", "create", "b"]);
    ok(&engine, &["run", "-d", "--name", "client", "--network", "a", IMAGE, "sleep", "300"]);
    let server = web(&engine, "server", &["--network", "b", "--network-alias", "srv"]);
    let fetch = |engine: &NativeEngine| berth(engine, &["exec", "client", "busybox", "timeout", "2", "busybox", "wget", "-qO-", "http://srv/hostname"]);
    assert_ne!(fetch(&engine).0, 0, "reached a network it is not on");

    ok(&engine, &["network", "connect", "b", "client"]);
    let (code, out, err) = fetch(&engine);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), server);
    let links = ok(&engine, &["exec", "client", "ip", "-o", "-4", "addr"]);
    assert!(links.contains("eth1"), "{links}");
    let networks = inspect(&engine, &["inspect", "client"])["NetworkSettings"]["Networks"].clone();
    assert!(networks["a"]["IPAddress"].is_string() && networks["b"]["IPAddress"].as_str().is_some_and(|ip| !ip.is_empty()), "{networks}");
    assert!(fails(&engine, &["network", "connect", "b", "client"]).contains("already exists"));

    ok(&engine, &["network", "disconnect", "b", "client"]);
    assert_ne!(fetch(&engine).0, 0, "still on the network after disconnect");
    assert!(!ok(&engine, &["exec", "client", "ip", "-o", "-4", "addr"]).contains("eth1"));
    assert!(inspect(&engine, &["inspect", "client"])["NetworkSettings"]["Networks"].get("b").is_none());

    // A stopped container joins at its next start.
    ok(&engine, &["stop", "-t", "1", "client"]);
    ok(&engine, &["network", "connect", "--alias", "cli", "b", "client"]);
    ok(&engine, &["start", "client"]);
    let (code, out, err) = fetch(&engine);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), server);
    let resolves = ok(&engine, &["exec", "server", "busybox", "nslookup", "cli"]);
    assert!(resolves.contains("Name:"), "{resolves}");
    assert!(fails(&engine, &["network", "disconnect", "a", "server"]).contains("is not connected"));
    assert_torn_down(&engine, &baseline);
}

/// `-o com.docker.network.bridge.name=` may not name an interface the host already has
/// (eth0, lo, a VPN's) or another network's bridge: Berth used to take it over (address,
/// up) and delete it with `network rm`.
#[test]
fn a_chosen_bridge_name_never_takes_over_an_existing_interface() {
    let (engine, _) = engine("net-bridge-name");
    let (made, said) = engine.in_netns(&["ip", "link", "add", "hostif0", "type", "veth", "peer", "name", "hostif1"]);
    assert!(made, "{said}");
    let baseline = engine.network_footprint();
    for taken in ["hostif0", "lo", "berth0"] {
        let said = fails(&engine, &["network", "create", "-o", &format!("com.docker.network.bridge.name={taken}"), "grab"]);
        assert!(said.contains(&format!("bridge name {taken} is")), "{taken}: {said}");
    }
    ok(&engine, &["network", "create", "-o", "com.docker.network.bridge.name=brmine", "mine"]);
    let said = fails(&engine, &["network", "create", "-o", "com.docker.network.bridge.name=brmine", "theirs"]);
    assert!(said.contains("already used by network mine"), "{said}");
    assert!(fails(&engine, &["network", "inspect", "grab"]).contains("grab"));
    // The host's interfaces are as they were: nothing added to them, nothing deleted.
    assert_torn_down(&engine, &baseline);
    let (_, links) = engine.in_netns(&["ip", "-o", "link", "show", "hostif0"]);
    assert!(links.contains("hostif0"), "{links}");
}

#[test]
fn addresses_and_ports_survive_an_engine_restart_and_prune_removes_only_unused() {
    let (mut engine, baseline) = engine("net-restart");
    ok(&engine, &["network", "create", "--subnet", "10.88.0.0/24", "keep"]);
    let first = web(&engine, "first", &["--network", "keep", "-p", "9090:80"]);
    engine.kill_and_restart();
    // The running container kept its address, its port and its name.
    assert_eq!(engine.in_netns(&["busybox", "wget", "-qO-", "http://127.0.0.1:9090/hostname"]).1.trim(), first);
    ok(&engine, &["run", "-d", "--name", "second", "--network", "keep", IMAGE, "sleep", "300"]);
    let second_ip = inspect(&engine, &["inspect", "second"])["NetworkSettings"]["Networks"]["keep"]["IPAddress"].clone();
    assert_eq!(second_ip, "10.88.0.3", "the restarted engine handed out a taken address");
    assert_eq!(ok(&engine, &["exec", "second", "busybox", "wget", "-qO-", "http://first/hostname"]).trim(), first);

    ok(&engine, &["network", "create", "--label", "temp", "unused1"]);
    ok(&engine, &["network", "create", "unused2"]);
    let pruned = ok(&engine, &["network", "prune", "--filter", "label=temp"]);
    assert!(pruned.contains("unused1") && !pruned.contains("unused2"), "{pruned}");
    let pruned = ok(&engine, &["network", "prune"]);
    assert!(pruned.contains("unused2") && !pruned.contains("keep"), "{pruned}");
    let left = ok(&engine, &["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(left, "bridge\nhost\nkeep\nnone\n");
    assert_torn_down(&engine, &baseline);
}

#[test]
fn host_none_and_container_network_modes() {
    let (engine, baseline) = engine("net-modes");
    let none = ok(&engine, &["run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link"]);
    assert_eq!(none.lines().count(), 1, "{none}");
    let host = ok(&engine, &["run", "--rm", "--network", "host", IMAGE, "ip", "-o", "link"]);
    assert!(host.contains("berth0"), "{host}");
    let id = web(&engine, "owner", &[]);
    let shared = ok(&engine, &["run", "--rm", "--network", "container:owner", IMAGE, "busybox", "wget", "-qO-", "http://127.0.0.1/hostname"]);
    assert_eq!(shared.trim(), id);
    assert!(fails(&engine, &["run", "--rm", "--network", "container:owner", "-p", "1:1", IMAGE, "true"]).contains("conflicting options"));
    assert_torn_down(&engine, &baseline);
}

#[test]
fn names_the_engine_does_not_know_go_to_the_upstream_resolver() {
    // The upstream: a DNS server the test runs in the engine's namespace.
    let (engine, baseline) = engine_with("net-upstream", &[("BERTH_DNS_UPSTREAM", "127.0.0.1:5300")]);
    let holder = engine.netns_holder.as_ref().expect("isolated").id();
    let mut upstream = Command::new("nsenter")
        .arg(format!("--net=/proc/{holder}/ns/net"))
        .arg("--")
        .arg(netprobe())
        .args(["dns-answer", "127.0.0.1:5300", "192.0.2.77"])
        .stdout(Stdio::null())
        .spawn()
        .expect("upstream resolver");
    ok(&engine, &["network", "create", "lan"]);
    let id = web(&engine, "local", &["--network", "lan"]);
    let (code, out, err) = berth(&engine, &["run", "--rm", "--network", "lan", IMAGE, "busybox", "nslookup", "-type=a", "example.test"]);
    let _ = upstream.kill();
    let _ = upstream.wait();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("192.0.2.77"), "the upstream's answer did not come back: {out}");
    // Names on the network are still answered by the engine itself.
    assert_eq!(ok(&engine, &["run", "--rm", "--network", "lan", IMAGE, "busybox", "wget", "-qO-", "http://local/hostname"]).trim(), id);
    assert_torn_down(&engine, &baseline);
}
