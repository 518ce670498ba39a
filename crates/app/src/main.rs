// mimalloc rather than the C library's allocator: under capture load the request threads
// free what the capture writer's thread allocated (each answer's lead), and the C library
// takes a lock and walks its free lists for every such free — a fifth of the server's CPU
// was malloc, free and realloc. With mimalloc, 128 clients: 8–12 % less CPU per capture
// and a lower p99 in each of three alternated pairs; the lead and order imports faster too
// (BENCHMARKS.md, lead engine, tenth round).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    marketops::cli::main()
}
