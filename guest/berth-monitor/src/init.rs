//! `berth-monitor init -- CMD [ARGS...]`: the tiny init `--init` puts at PID 1 in a
//! container (what tini / docker-init are). It runs the command as its only child,
//! forwards every signal it can catch to it, reaps every zombie the container makes,
//! and exits with the child's status (128 + signal when killed by one).

use std::ffi::CString;

pub fn run(args: &[String]) -> i32 {
    let command: Vec<&String> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].iter().collect(),
        None => args.iter().collect(),
    };
    if command.is_empty() {
        eprintln!("berth-init: no command given");
        return 2;
    }
    let Ok(argv) = command.iter().map(|a| CString::new(a.as_str())).collect::<Result<Vec<_>, _>>() else {
        eprintln!("berth-init: an argument holds a NUL byte");
        return 2;
    };
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());

    // SAFETY: the signal set is local and initialised by sigfillset; sigprocmask takes
    // valid pointers to it.
    let all = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        all
    };
    // SAFETY: fork in a single-threaded process; the child only calls async-signal-safe
    // functions (sigprocmask, setpgid, execvp, _exit) before exec.
    let child = unsafe { libc::fork() };
    if child < 0 {
        eprintln!("berth-init: fork: {}", std::io::Error::last_os_error());
        return 1;
    }
    if child == 0 {
        // SAFETY: see above; argv_ptrs is a NULL-terminated array of valid C strings.
        unsafe {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::setpgid(0, 0);
            // The child's process group owns the terminal, as tini arranges it.
            libc::tcsetpgrp(0, libc::getpid());
            libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            let message = b"berth-init: cannot run the command\n";
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(127);
        }
    }
    loop {
        let mut info: libc::siginfo_t = unsafe_zeroed_siginfo();
        // SAFETY: sigwaitinfo with the full blocked set and a valid siginfo pointer.
        let signal = unsafe { libc::sigwaitinfo(&all, &mut info) };
        if signal < 0 {
            continue;
        }
        if signal != libc::SIGCHLD {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(child, signal) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                return if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
            }
        }
    }
}

fn unsafe_zeroed_siginfo() -> libc::siginfo_t {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value to be overwritten.
    unsafe { std::mem::zeroed() }
}
