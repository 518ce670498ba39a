fn main() -> std::process::ExitCode {
    marketops::cli::main()
}
