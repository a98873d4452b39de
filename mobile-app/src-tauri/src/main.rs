//! `yiqian-doctor`: the doctor / nurse desktop app (see the library for what it does).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    match yiqian_app::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yiqian-doctor: {} / {}", e.message, e.message_en);
            std::process::ExitCode::FAILURE
        }
    }
}
