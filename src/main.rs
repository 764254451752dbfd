use std::process::ExitCode;

fn main() -> ExitCode {
    warden::app::main()
}
