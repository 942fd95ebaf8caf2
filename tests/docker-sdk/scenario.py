"""The Python Docker SDK (PyPI's `docker`, Debian's python3-docker) against the engine
in DOCKER_HOST: the calls an application or a test harness makes. Run by
tests/tests/docker_api.rs against Berth and against dockerd; any failed check raises."""

import io
import sys
import tarfile

import docker

IMAGE = sys.argv[1]


def check(got, wanted, what):
    if got != wanted:
        raise AssertionError(f"{what}: got {got!r}, wanted {wanted!r}")


client = docker.from_env(version="auto")
check(client.ping(), True, "ping")
check(client.version()["Os"], "linux", "version")
check(client.info()["OSType"], "linux", "info")

# Images: get, tag, list by name, remove the tag.
image = client.images.get(IMAGE)
check(image.id.startswith("sha256:"), True, "image id")
image.tag("sdk/tagged", "1")
check([i.id for i in client.images.list(name="sdk/tagged")], [image.id], "images.list(name=)")
client.images.remove("sdk/tagged:1")

# run: the output, an exit code as ContainerError, then a detached container.
check(client.containers.run(IMAGE, ["echo", "from the sdk"], remove=True), b"from the sdk\n", "run output")
try:
    client.containers.run(IMAGE, ["sh", "-c", "echo bad >&2; exit 7"], remove=True)
    raise AssertionError("a failing command raised nothing")
except docker.errors.ContainerError as e:
    check(e.exit_status, 7, "ContainerError.exit_status")

network = client.networks.create("sdknet", labels={"from": "sdk"})
volume = client.volumes.create("sdkvol", labels={"from": "sdk"})
box = client.containers.run(
    IMAGE,
    ["sleep", "300"],
    detach=True,
    name="sdkbox",
    labels={"from": "sdk"},
    environment={"GREETING": "hello"},
    volumes={"sdkvol": {"bind": "/data", "mode": "rw"}},
    network="sdknet",
)
box.reload()
check(box.status, "running", "status")
check(box.attrs["Config"]["Env"].count("GREETING=hello"), 1, "env")
check([c.name for c in client.containers.list(filters={"label": "from=sdk"})], ["sdkbox"], "list by label")
check("sdknet" in box.attrs["NetworkSettings"]["Networks"], True, "network attached")

# exec_run: output and exit code, with the streams demultiplexed.
code, output = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
check((code, output), (3, (b"out\n", b"err\n")), "exec_run")
check(box.exec_run(["sh", "-c", "echo $GREETING > /data/g && cat /data/g"]).output, b"hello\n", "exec in a volume")


def read_all(sock):
    raw = sock._sock if hasattr(sock, "_sock") else sock
    raw.settimeout(20)
    data = b""
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            return data
        data += chunk


def frames(data):
    out = []
    while data:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        check(data[1:4], b"\0\0\0", "frame header padding")
        out.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    return out


# exec_start(socket=True): without a TTY, docker's multiplexed frames (stdout 1,
# stderr 2); with one, the raw terminal stream.
api = client.api
plain = api.exec_create(box.id, ["sh", "-c", "echo out; echo err >&2"])
got = frames(read_all(api.exec_start(plain["Id"], socket=True)))
check(sorted(got), [(1, b"out\n"), (2, b"err\n")], "exec_start(socket=True) frames")
# Ten times: output that raced the 101 once landed in the SDK's header buffer and was
# lost about one time in four.
for _ in range(10):
    tty = api.exec_create(box.id, ["sh", "-c", "echo out; echo err >&2"], tty=True)
    check(read_all(api.exec_start(tty["Id"], socket=True, tty=True)), b"out\r\nerr\r\n", "exec_start(socket=True, tty=True)")

# put_archive and get_archive (docker cp).
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w") as tar:
    data = b"put by the sdk\n"
    info = tarfile.TarInfo("sdk.txt")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
check(box.put_archive("/tmp", buffer.getvalue()), True, "put_archive")
check(box.exec_run(["cat", "/tmp/sdk.txt"]).output, b"put by the sdk\n", "the file put")
stream, stat = box.get_archive("/tmp/sdk.txt")
check(stat["name"], "sdk.txt", "get_archive stat")
with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
    check(tar.extractfile("sdk.txt").read(), b"put by the sdk\n", "get_archive content")

# top, stats, logs, rename.
check(any("sleep 300" in " ".join(p) for p in box.top()["Processes"]), True, "top")
stats = box.stats(stream=False)
check(stats["pids_stats"]["current"], 1, "stats pids")
box.rename("sdkbox2")
box.reload()
check(box.name, "sdkbox2", "rename")

# Networks and volumes: lists, connect/disconnect, removal.
check([n.name for n in client.networks.list(names=["sdknet"])], ["sdknet"], "networks.list")
check([v.name for v in client.volumes.list(filters={"label": "from=sdk"})], ["sdkvol"], "volumes.list")
bridge = client.networks.get("bridge")
bridge.connect(box)
box.reload()
check(sorted(box.attrs["NetworkSettings"]["Networks"]), ["bridge", "sdknet"], "connect")
bridge.disconnect(box)

# stop, wait, logs, remove.
box.stop(timeout=1)
check(box.wait()["StatusCode"], 137, "wait after stop (sleep ignores TERM as PID 1)")
logs = client.containers.run(IMAGE, ["sh", "-c", "echo one; echo two"], detach=True)
check(logs.wait()["StatusCode"], 0, "wait")
check(logs.logs(), b"one\ntwo\n", "logs")
logs.remove()
box.remove(v=False)
network.remove()
volume.remove()

# images.build: a context folder with a Dockerfile and a build arg (the classic
# builder's API), then the image runs.
import tempfile, os
with tempfile.TemporaryDirectory() as ctx:
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM %s\nARG WHO=nobody\nRUN echo built for $WHO > /who.txt\nCMD [\"cat\", \"/who.txt\"]\n" % IMAGE)
    built, output = client.images.build(path=ctx, tag="sdk/built:1", buildargs={"WHO": "the sdk"}, rm=True)
    check(built.tags, ["sdk/built:1"], "images.build tags")
    check(any("Successfully built" in (line.get("stream") or "") for line in output), True, "images.build output")
check(client.containers.run("sdk/built:1", remove=True), b"built for the sdk\n", "run the built image")
client.images.remove("sdk/built:1")
check(client.containers.list(all=True), [], "no containers left")
print("sdk scenario passed")
