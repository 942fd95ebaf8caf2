//! The default seccomp profile: an allowlist with the behaviour of Docker's default
//! profile (written here from the documented rules, not copied). Everything not
//! listed fails with EPERM. Blocked for everyone unless a capability says otherwise:
//! kernel modules, kexec, reboot, mount and namespace creation (CAP_SYS_ADMIN),
//! ptrace and cross-process memory access (CAP_SYS_PTRACE; ptrace itself is open on
//! kernels 4.8 and later), clock setting (CAP_SYS_TIME), swap, quotas, keyrings, bpf,
//! perf, userfaultfd, NUMA policy, io_uring, AF_VSOCK sockets, personality changes
//! other than the harmless ones. `clone3` answers ENOSYS so C
//! libraries fall back to `clone`, whose namespace flags are then checked.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// Allowed for every container.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // 32-bit ARM and arm64 specifics
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
];

/// Allowed when the container holds the capability.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", "move_pages"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Allowed for every container on kernels 4.8 and later, where a traced process can no
/// longer use ptrace to step around its seccomp filter (docker's rule too); before
/// that, only with CAP_SYS_PTRACE.
const SINCE_4_8: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// AF_VSOCK: `socket` with any other family is allowed. In Berth's VM the agent listens
/// on vsock; a container must not reach it, nor bind its ports while it restarts.
const AF_VSOCK: u64 = 40;

/// Namespace flags `clone` may not use without CAP_SYS_ADMIN: NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME... masked together.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .action(action)
        .build()
        .expect("a syscall rule with names and an action is complete")
}

fn arg(index: usize, value: u64, value_two: u64, op: LinuxSeccompOperator) -> oci_spec::runtime::LinuxSeccompArg {
    LinuxSeccompArgBuilder::default().index(index).value(value).value_two(value_two).op(op).build().expect("a seccomp argument with every field is complete")
}

/// The default profile for a container holding `caps`, on this machine's kernel.
pub fn default_profile(caps: &BTreeSet<String>) -> LinuxSeccomp {
    profile_for(caps, kernel_at_least(4, 8))
}

/// Whether the running kernel's release is `major.minor` or later.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// The default profile for `caps`; `modern_kernel`: 4.8 or later.
fn profile_for(caps: &BTreeSet<String>, modern_kernel: bool) -> LinuxSeccomp {
    let mut rules = vec![rule(ALLOWED, LinuxSeccompAction::ScmpActAllow)];
    if modern_kernel {
        rules.push(rule(SINCE_4_8, LinuxSeccompAction::ScmpActAllow));
    }
    let mut socket = rule(&["socket"], LinuxSeccompAction::ScmpActAllow);
    socket.set_args(Some(vec![arg(0, AF_VSOCK, 0, LinuxSeccompOperator::ScmpCmpNe)]));
    rules.push(socket);
    let mut extra: Vec<&str> = Vec::new();
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(*cap) {
            extra.extend(names.iter().copied());
        }
    }
    extra.sort_unstable();
    extra.dedup();
    if modern_kernel {
        extra.retain(|name| !SINCE_4_8.contains(name));
    }
    if !extra.is_empty() {
        rules.push(rule(&extra, LinuxSeccompAction::ScmpActAllow));
    }
    if caps.contains("CAP_SYS_ADMIN") {
        rules.push(rule(&["clone"], LinuxSeccompAction::ScmpActAllow));
    } else {
        let mut clone = rule(&["clone"], LinuxSeccompAction::ScmpActAllow);
        clone.set_args(Some(vec![arg(0, CLONE_NAMESPACE_FLAGS, 0, LinuxSeccompOperator::ScmpCmpMaskedEq)]));
        rules.push(clone);
        let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        rules.push(clone3);
    }
    // personality: only the harmless personas (Linux, 32-bit Linux, UNAME26, query).
    for persona in [0x0u64, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff] {
        let mut personality = rule(&["personality"], LinuxSeccompAction::ScmpActAllow);
        personality.set_args(Some(vec![arg(0, persona, 0, LinuxSeccompOperator::ScmpCmpEq)]));
        rules.push(personality);
    }
    let architectures = if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    };
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(architectures)
        .syscalls(rules)
        .build()
        .expect("a profile with every field is complete")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(profile: &LinuxSeccomp, name: &str) -> bool {
        profile.syscalls().as_ref().expect("rules").iter().any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.names().iter().any(|n| n == name))
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let defaults: BTreeSet<String> = crate::container::caps::DEFAULT.iter().map(|c| (*c).to_owned()).collect();
        let profile = profile_for(&defaults, false);
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        for blocked in ["mount", "unshare", "ptrace", "reboot", "keyctl", "bpf", "swapon", "init_module", "settimeofday", "io_uring_setup"] {
            assert!(!allowed(&profile, blocked), "{blocked} must be blocked by default");
        }
        for open in ["read", "execve", "chroot", "clone", "socket"] {
            assert!(allowed(&profile, open), "{open} must be allowed");
        }
        let mut admin = defaults.clone();
        admin.insert("CAP_SYS_ADMIN".to_owned());
        let profile = profile_for(&admin, false);
        assert!(allowed(&profile, "mount") && allowed(&profile, "unshare") && allowed(&profile, "clone3"));
        assert!(!allowed(&profile, "ptrace"));
        // From 4.8 ptrace is everyone's, as in docker's profile; kcmp still needs the capability.
        let profile = profile_for(&defaults, true);
        assert!(allowed(&profile, "ptrace") && allowed(&profile, "process_vm_readv") && !allowed(&profile, "kcmp"));
    }

    #[test]
    fn socket_is_allowed_for_every_family_but_vsock() {
        let profile = profile_for(&BTreeSet::new(), true);
        let rules: Vec<_> = profile.syscalls().as_ref().expect("rules").iter().filter(|r| r.names().iter().any(|n| n == "socket")).collect();
        assert_eq!(rules.len(), 1, "one rule for socket, with its argument check");
        let args = rules[0].args().as_ref().expect("an argument check");
        assert_eq!((args[0].index(), args[0].value(), args[0].op()), (0, AF_VSOCK, LinuxSeccompOperator::ScmpCmpNe));
    }

    #[test]
    fn no_syscall_is_listed_twice_in_the_base_list() {
        let set: BTreeSet<&str> = ALLOWED.iter().copied().collect();
        assert_eq!(set.len(), ALLOWED.len());
    }
}
