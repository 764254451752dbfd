use std::process::ExitCode;

fn main() -> ExitCode {
    // `warden __init …`: the PID 1 of a batch's namespace, before anything
    // else of warden's starts (see supervisor::pidns).
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(2).collect();
    if args
        .get(1)
        .is_some_and(|a| a == warden::supervisor::pidns::INIT_ARG)
    {
        warden::supervisor::pidns::init_main(std::env::args_os().collect())
    }
    warden::app::main()
}
