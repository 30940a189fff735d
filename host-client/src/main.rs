//! `licet`: Licet's command line. Everything but the exit lives in [`licet_client::cli`].

fn main() -> std::process::ExitCode {
    licet_client::cli::main(std::env::args_os()).into()
}
