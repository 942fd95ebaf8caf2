"""testcontainers-python (PyPI `testcontainers`, with the `docker` SDK it brings) against
the engine in DOCKER_HOST: what a test suite that uses testcontainers does. Run by
tests/tests/docker_api.rs, inside the engine's network namespace, against Berth and
against dockerd; any failed check raises. Ryuk (the reaper) is off: its image comes
from Docker Hub, which these machines cannot reach; the containers are removed by
testcontainers' own `stop` instead, and the test checks that none is left."""

import pathlib
import sys
import urllib.request

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

IMAGE = sys.argv[1]


def check(got, wanted, what):
    if got != wanted:
        raise AssertionError(f"{what}: got {got!r}, wanted {wanted!r}")


with Network() as network:
    # A web server on a random host port, with a page copied in before it starts, a
    # tmpfs, an environment and an alias on a user network; ready once it answers HTTP.
    web = (
        DockerContainer(IMAGE)
        .with_command(["sh", "-c", "echo $GREETING > /www/env.txt; echo serving; exec httpd -f -p 80 -h /www"])
        .with_env("GREETING", "hello from testcontainers")
        .with_exposed_ports(80)
        .with_tmpfs_mount("/scratch")
        .with_copy_into_container(b"copied in\n", "/www/index.html")
        .with_network(network)
        .with_network_aliases("web")
        .waiting_for(HttpWaitStrategy(80, "/index.html").for_status_code(200))
    )
    with web:
        host = web.get_container_host_ip()
        port = web.get_exposed_port(80)
        check(host, "localhost", "host")
        check(port > 0, True, "a mapped port")
        with urllib.request.urlopen(f"http://{host}:{port}/env.txt", timeout=10) as page:
            check(page.read(), b"hello from testcontainers\n", "the page through the mapped port")
        code, output = web.exec(["sh", "-c", "grep -c ' /scratch tmpfs' /proc/mounts"])
        check((code, output), (0, b"1\n"), "exec and the tmpfs")
        stdout, _ = web.get_logs()
        check(stdout, b"serving\n", "logs")
        copied = pathlib.Path(sys.argv[2]) / "env.txt"
        web.copy_from_container("/www/env.txt", copied)
        check(copied.read_bytes(), b"hello from testcontainers\n", "copy_from_container")

        # A second container on the network reaches the first by its alias, and is
        # waited for by a log line.
        client = (
            DockerContainer(IMAGE)
            .with_command(["sh", "-c", "wget -qO- http://web/index.html; echo fetched; exec sleep 300"])
            .with_network(network)
            .waiting_for(LogMessageWaitStrategy("fetched"))
        )
        with client:
            stdout, _ = client.get_logs()
            check(stdout, b"copied in\nfetched\n", "fetched by alias")
            client_id = client.get_container_id()
        docker = web.get_docker_client().client
        check([c.id for c in docker.containers.list(all=True) if c.id == client_id], [], "stop removes the container")

    # A container that exits: its code through wait().
    with DockerContainer(IMAGE).with_command(["sh", "-c", "exit 4"]) as short:
        check(short.wait(), 4, "wait")

print("testcontainers scenario passed")
