//! The user's terminal for `run -it`, `exec -it`, `attach` and `compose run`: raw mode,
//! its size, and its size's changes. termios and SIGWINCH on unix; the console API on
//! Windows, which has no resize signal, so the size is polled there as the docker CLI
//! does.

/// Puts the terminal in raw mode until dropped.
pub struct RawTerminal(Option<imp::Saved>);

impl RawTerminal {
    pub fn enable() -> RawTerminal {
        RawTerminal(imp::enable_raw())
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            imp::restore(saved);
        }
    }
}

/// The terminal's (rows, columns), or (0, 0) when output is not a terminal.
pub fn terminal_size() -> (u32, u32) {
    imp::size()
}

/// Sends the terminal's new size whenever it changes.
pub fn forward_resizes<T: Send + 'static>(sender: tokio::sync::mpsc::Sender<T>, resize: impl Fn(u32, u32) -> T + Send + 'static) {
    tokio::spawn(imp::forward_resizes(sender, resize));
}

#[cfg(unix)]
mod imp {
    pub type Saved = libc::termios;

    pub fn enable_raw() -> Option<Saved> {
        // SAFETY: termios is plain data filled by tcgetattr; fd 0 is stdin.
        unsafe {
            let mut original: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut original) != 0 {
                return None;
            }
            let mut raw = original;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            Some(original)
        }
    }

    pub fn restore(saved: &Saved) {
        // SAFETY: restores the settings read in `enable_raw`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
    }

    pub fn size() -> (u32, u32) {
        // SAFETY: TIOCGWINSZ fills a winsize from a valid pointer.
        unsafe {
            let mut size: libc::winsize = std::mem::zeroed();
            if libc::ioctl(1, libc::TIOCGWINSZ, &mut size) == 0 {
                (u32::from(size.ws_row), u32::from(size.ws_col))
            } else {
                (0, 0)
            }
        }
    }

    /// On SIGWINCH.
    pub async fn forward_resizes<T>(sender: tokio::sync::mpsc::Sender<T>, resize: impl Fn(u32, u32) -> T) {
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else { return };
        while winch.recv().await.is_some() {
            let (rows, cols) = size();
            if rows > 0 && sender.send(resize(rows, cols)).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::System::Console::{
        GetConsoleMode, GetConsoleScreenBufferInfo, GetStdHandle, SetConsoleMode, CONSOLE_MODE, CONSOLE_SCREEN_BUFFER_INFO, DISABLE_NEWLINE_AUTO_RETURN,
        ENABLE_ECHO_INPUT, ENABLE_LINE_INPUT, ENABLE_PROCESSED_INPUT, ENABLE_VIRTUAL_TERMINAL_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING, STD_INPUT_HANDLE,
        STD_OUTPUT_HANDLE,
    };

    /// The input and output consoles' modes before raw mode.
    pub struct Saved {
        input: CONSOLE_MODE,
        output: Option<CONSOLE_MODE>,
    }

    fn mode(std: windows_sys::Win32::System::Console::STD_HANDLE) -> Option<CONSOLE_MODE> {
        let mut mode = 0;
        // SAFETY: GetStdHandle returns a handle or null; GetConsoleMode fails on a
        // handle that is not a console.
        (unsafe { GetConsoleMode(GetStdHandle(std), &mut mode) } != 0).then_some(mode)
    }

    fn set(std: windows_sys::Win32::System::Console::STD_HANDLE, mode: CONSOLE_MODE) {
        // SAFETY: as in `mode`.
        unsafe { SetConsoleMode(GetStdHandle(std), mode) };
    }

    /// No line editing, echo or Ctrl-C handling on input, and VT sequences both ways,
    /// so the container's terminal sees keys as a unix terminal sends them.
    pub fn enable_raw() -> Option<Saved> {
        let input = mode(STD_INPUT_HANDLE)?;
        let output = mode(STD_OUTPUT_HANDLE);
        set(STD_INPUT_HANDLE, (input & !(ENABLE_ECHO_INPUT | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT)) | ENABLE_VIRTUAL_TERMINAL_INPUT);
        if let Some(output) = output {
            set(STD_OUTPUT_HANDLE, output | ENABLE_VIRTUAL_TERMINAL_PROCESSING | DISABLE_NEWLINE_AUTO_RETURN);
        }
        Some(Saved { input, output })
    }

    pub fn restore(saved: &Saved) {
        set(STD_INPUT_HANDLE, saved.input);
        if let Some(output) = saved.output {
            set(STD_OUTPUT_HANDLE, output);
        }
    }

    pub fn size() -> (u32, u32) {
        // SAFETY: the info is plain data filled from a valid pointer.
        unsafe {
            let mut info: CONSOLE_SCREEN_BUFFER_INFO = std::mem::zeroed();
            if GetConsoleScreenBufferInfo(GetStdHandle(STD_OUTPUT_HANDLE), &mut info) == 0 {
                return (0, 0);
            }
            let rows = i32::from(info.srWindow.Bottom) - i32::from(info.srWindow.Top) + 1;
            let cols = i32::from(info.srWindow.Right) - i32::from(info.srWindow.Left) + 1;
            (rows.max(0) as u32, cols.max(0) as u32)
        }
    }

    /// Windows has no resize signal: the size is read four times a second.
    pub async fn forward_resizes<T>(sender: tokio::sync::mpsc::Sender<T>, resize: impl Fn(u32, u32) -> T) {
        let mut last = size();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let now = size();
            if now != last && now.0 > 0 {
                last = now;
                if sender.send(resize(now.0, now.1)).await.is_err() {
                    return;
                }
            }
        }
    }
}
