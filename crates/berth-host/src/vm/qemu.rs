//! QEMU's command line for Berth's VM.

use std::ffi::OsString;
use std::path::PathBuf;

use super::accel::Accel;

/// How the host reaches the guest's vsock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsockDevice {
    /// vhost-user-vsock backed by vhost-device-vsock listening on `socket`.
    VhostUser { socket: PathBuf },
    /// The host kernel's vhost-vsock with this guest CID.
    Kernel { guest_cid: u32 },
    /// No vsock device: only for measuring the bare boot floor.
    None,
}

#[derive(Debug, Clone)]
pub struct QemuArgs {
    pub accel: Accel,
    /// The guest's architecture: its machine type.
    pub arch: super::Arch,
    pub cpus: u32,
    pub mem_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub qmp_socket: PathBuf,
    pub console_log: PathBuf,
    pub vsock: VsockDevice,
    /// The serial transport: a virtio-serial port named [`berth_proto::mux::SERIAL_PORT_NAME`]
    /// whose host end is this unix socket (QEMU listens; the session connects).
    pub serial_mux: Option<PathBuf>,
    /// QEMU's host ends (QMP, the serial mux) are named pipes, not unix sockets: on
    /// Windows, where each path maps to a pipe (`berth_proto::ipc::pipe_name`).
    pub host_pipes: bool,
    /// QEMU user-mode networking: the guest reaches the host (10.0.2.2) and, through
    /// it, what the host reaches; nothing listens for the guest on the host.
    pub user_network: bool,
    /// The engine's data disk (raw, sparse; discards free its space on the host).
    pub data_disk: Option<PathBuf>,
    /// Host folders shared into the guest, each with its tag.
    pub shares: Vec<(String, ShareDevice)>,
    /// Files the guest reads from fw_cfg: (name, host file).
    pub fw_cfg: Vec<(String, PathBuf)>,
    /// A balloon with free page reporting: memory the guest frees goes back to the host.
    pub balloon: bool,
}

/// How one shared folder is offered to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareDevice {
    /// vhost-user-fs, served by virtiofsd listening on this socket.
    Virtiofs { socket: PathBuf },
    /// virtio-9p, served by QEMU from this folder, as the user QEMU runs as (files
    /// the guest makes are that user's; `security_model=none` ignores chown).
    NineP { path: PathBuf },
}

/// A path inside a QEMU option value, where a comma must be doubled.
fn opt_path(path: &std::path::Path) -> String {
    path.display().to_string().replace(',', ",,")
}

impl QemuArgs {
    /// A host end QEMU listens on, as `-qmp` takes it: `unix:PATH,server=on,wait=off`,
    /// or `pipe:NAME` (QEMU makes `\\.\pipe\NAME` and serves it).
    fn listen_chardev(&self, path: &std::path::Path) -> String {
        if self.host_pipes {
            format!("pipe:{}", berth_proto::ipc::qemu_pipe_name(path))
        } else {
            format!("unix:{},server=on,wait=off", opt_path(path))
        }
    }

    /// The same as `-chardev` options (before `,id=`).
    fn listen_chardev_opts(&self, path: &std::path::Path) -> String {
        if self.host_pipes {
            format!("pipe,path={}", berth_proto::ipc::qemu_pipe_name(path))
        } else {
            format!("socket,path={},server=on,wait=off", opt_path(path))
        }
    }

    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |parts: &[&str]| args.extend(parts.iter().map(OsString::from));
        let mut machine = format!("{},accel={}", self.arch.machine(), self.accel.as_str());
        // vhost-user devices (vsock's backend, virtiofsd) map the guest's memory.
        let shared_memory = matches!(self.vsock, VsockDevice::VhostUser { .. }) || self.shares.iter().any(|(_, d)| matches!(d, ShareDevice::Virtiofs { .. }));
        if shared_memory {
            // vhost-user needs guest memory the backend can map: a shared memfd.
            machine.push_str(",memory-backend=mem0");
        }
        push(&["-name", "berth", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
        push(&["-machine", &machine, "-cpu", self.accel.cpu_model(self.arch)]);
        push(&["-smp", &self.cpus.to_string(), "-m", &format!("{}M", self.mem_mib)]);
        if shared_memory {
            push(&["-object", &format!("memory-backend-memfd,id=mem0,size={}M,share=on", self.mem_mib)]);
        }
        push(&["-kernel", &self.kernel.to_string_lossy(), "-initrd", &self.initrd.to_string_lossy()]);
        push(&["-append", &self.cmdline]);
        push(&["-serial", &format!("file:{}", self.console_log.display())]);
        push(&["-qmp", &self.listen_chardev(&self.qmp_socket)]);
        match &self.vsock {
            VsockDevice::VhostUser { socket } => {
                push(&["-chardev", &format!("socket,id=vsock0,path={}", socket.display())]);
                push(&["-device", "vhost-user-vsock-pci,chardev=vsock0"]);
            }
            VsockDevice::Kernel { guest_cid } => {
                push(&["-device", &format!("vhost-vsock-pci,guest-cid={guest_cid}")]);
            }
            VsockDevice::None => {}
        }
        if let Some(socket) = &self.serial_mux {
            push(&["-device", "virtio-serial-pci,id=mux0"]);
            push(&["-chardev", &format!("{},id=muxc", self.listen_chardev_opts(socket))]);
            push(&["-device", &format!("virtserialport,bus=mux0.0,chardev=muxc,name={}", berth_proto::mux::SERIAL_PORT_NAME)]);
        }
        if self.user_network {
            push(&["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0"]);
        }
        if let Some(disk) = &self.data_disk {
            push(&["-drive", &format!("file={},if=none,id=data0,format=raw,discard=unmap,detect-zeroes=unmap", opt_path(disk))]);
            push(&["-device", "virtio-blk-pci,drive=data0"]);
        }
        for (i, (tag, device)) in self.shares.iter().enumerate() {
            match device {
                ShareDevice::Virtiofs { socket } => {
                    push(&["-chardev", &format!("socket,id=fs{i},path={}", opt_path(socket))]);
                    push(&["-device", &format!("vhost-user-fs-pci,chardev=fs{i},tag={tag}")]);
                }
                ShareDevice::NineP { path } => {
                    push(&["-fsdev", &format!("local,id=fs{i},path={},security_model=none", opt_path(path))]);
                    push(&["-device", &format!("virtio-9p-pci,fsdev=fs{i},mount_tag={tag}")]);
                }
            }
        }
        for (name, file) in &self.fw_cfg {
            push(&["-fw_cfg", &format!("name={name},file={}", opt_path(file))]);
        }
        if self.balloon {
            push(&["-device", "virtio-balloon-pci,free-page-reporting=on"]);
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain VM's arguments with `vsock`: no disk, shares or fw_cfg files.
    fn base(vsock: VsockDevice) -> QemuArgs {
        QemuArgs {
            accel: Accel::Tcg,
            arch: crate::vm::Arch::X86_64,
            cpus: 1,
            mem_mib: 512,
            kernel: "/img/vmlinuz".into(),
            initrd: "/img/initramfs.cpio".into(),
            cmdline: "console=ttyS0".into(),
            qmp_socket: "/h/qmp.sock".into(),
            console_log: "/h/console.log".into(),
            vsock,
            serial_mux: None,
            host_pipes: false,
            user_network: true,
            data_disk: None,
            shares: Vec::new(),
            fw_cfg: Vec::new(),
            balloon: false,
        }
    }

    fn args(vsock: VsockDevice) -> Vec<String> {
        base(vsock).to_args().into_iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn vhost_user_gets_shared_memory() {
        let a = args(VsockDevice::VhostUser { socket: "/h/vhost.sock".into() });
        let joined = a.join(" ");
        assert!(joined.contains("-machine q35,accel=tcg,memory-backend=mem0"), "{joined}");
        assert!(joined.contains("memory-backend-memfd,id=mem0,size=512M,share=on"), "{joined}");
        assert!(joined.contains("vhost-user-vsock-pci,chardev=vsock0"), "{joined}");
        assert!(joined.contains("-cpu max"), "{joined}");
        assert!(joined.contains("-netdev user,id=net0 -device virtio-net-pci,netdev=net0"), "{joined}");
        assert!(!joined.contains("hostfwd"), "nothing may listen on the host for the guest: {joined}");
    }

    #[test]
    fn shares_disk_and_settings_become_devices() {
        let mut a = QemuArgs {
            data_disk: Some("/h/vm/data,1.img".into()),
            shares: vec![("share0".into(), ShareDevice::NineP { path: "/home/me".into() })],
            fw_cfg: vec![("opt/berth/boot.conf".into(), "/h/vm/boot.conf".into())],
            balloon: true,
            ..base(VsockDevice::Kernel { guest_cid: 7 })
        };
        let joined = |a: &QemuArgs| a.to_args().iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
        let text = joined(&a);
        assert!(text.contains("file=/h/vm/data,,1.img,if=none,id=data0,format=raw,discard=unmap"), "{text}");
        assert!(text.contains("-fsdev local,id=fs0,path=/home/me,security_model=none -device virtio-9p-pci,fsdev=fs0,mount_tag=share0"), "{text}");
        assert!(text.contains("-fw_cfg name=opt/berth/boot.conf,file=/h/vm/boot.conf"), "{text}");
        assert!(text.contains("virtio-balloon-pci,free-page-reporting=on"), "{text}");
        assert!(!text.contains("memfd"), "9p needs no shared memory: {text}");
        a.shares = vec![("share0".into(), ShareDevice::Virtiofs { socket: "/h/vm/fs0.sock".into() })];
        let text = joined(&a);
        assert!(text.contains("memory-backend-memfd") && text.contains("vhost-user-fs-pci,chardev=fs0,tag=share0"), "{text}");
    }

    #[test]
    fn kernel_vsock_has_cid_and_no_memfd() {
        let a = args(VsockDevice::Kernel { guest_cid: 7 });
        let joined = a.join(" ");
        assert!(joined.contains("vhost-vsock-pci,guest-cid=7"), "{joined}");
        assert!(!joined.contains("memfd"), "{joined}");
    }

    #[test]
    fn the_serial_transport_is_a_named_port_on_a_socket_qemu_listens_on() {
        let a = QemuArgs { serial_mux: Some("/h/vm/mux,1.sock".into()), ..base(VsockDevice::None) };
        let text = a.to_args().iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
        assert!(text.contains("-device virtio-serial-pci,id=mux0"), "{text}");
        assert!(text.contains("-chardev socket,path=/h/vm/mux,,1.sock,server=on,wait=off,id=muxc"), "{text}");
        assert!(text.contains("-device virtserialport,bus=mux0.0,chardev=muxc,name=org.berth.mux"), "{text}");
        assert!(!text.contains("vsock") && !text.contains("memfd"), "no vsock device, no shared memory: {text}");
        assert!(text.contains("-qmp unix:/h/qmp.sock,server=on,wait=off"), "{text}");
    }

    #[test]
    fn an_arm64_guest_is_a_virt_machine() {
        let a = QemuArgs { arch: crate::vm::Arch::Arm64, ..base(VsockDevice::None) };
        let text = a.to_args().iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
        assert!(text.contains("-machine virt,accel=tcg -cpu cortex-a72"), "{text}");
        assert!(!text.contains("q35"), "{text}");
        assert_eq!(crate::vm::Arch::Arm64.console(), "ttyAMA0");
    }

    #[test]
    fn windows_hosts_use_named_pipes_for_qmp_and_the_mux() {
        let a = QemuArgs { serial_mux: Some(r"C:\Users\a\Berth\vm\mux.sock".into()), host_pipes: true, ..base(VsockDevice::None) };
        let text = a.to_args().iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
        let mux = berth_proto::ipc::qemu_pipe_name(std::path::Path::new(r"C:\Users\a\Berth\vm\mux.sock"));
        assert!(mux.starts_with("berth-") && mux.ends_with("-mux"), "{mux}");
        assert!(text.contains(&format!("-chardev pipe,path={mux},id=muxc")), "{text}");
        let qmp = berth_proto::ipc::qemu_pipe_name(std::path::Path::new("/h/qmp.sock"));
        assert!(text.contains(&format!("-qmp pipe:{qmp}")), "{text}");
        assert!(!text.contains("unix:") && !text.contains("server=on"), "{text}");
    }
}
