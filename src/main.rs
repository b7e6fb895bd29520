use clap::Parser;
use hactl::cli::{Cli, Command};
use hactl::envelope::Envelope;
use hactl::{commands, exit};

// Many connections at once allocate and free many small buffers from several threads. With
// glibc's malloc, a converge of 50 hosts cost 9% more CPU per host (and 500 mprotect calls).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => refuse_flags(err),
    };
    let mut out = Envelope::new(cli.command.name());
    let result = cli.command.settle().and_then(|()| match &cli.command {
        Command::Validate(a) => commands::validate::run(a, &mut out),
        Command::Render(a) => commands::render::run(a, &mut out),
        Command::Up(a) => commands::up::run(a, &mut out),
        Command::AddNode(a) => commands::add_node::run(a, &mut out),
        Command::RemoveNode(a) => commands::remove_node::run(a, &mut out),
        Command::Reset(a) => commands::reset::run(a, &mut out),
        Command::Restart(a) => commands::restart::run(a, &mut out),
        Command::Drain(a) => commands::drain::run(a, &mut out),
        Command::Status(a) => commands::status::run(a, &mut out),
        Command::SetPolicy(a) => commands::set_policy::run(a, &mut out),
        Command::Init(a) => commands::init::run(a, &mut out),
        Command::Endpoints(a) => commands::endpoints::run(a, &mut out),
        Command::Vip(a) => commands::vip::run(a, &mut out),
        Command::Drill(a) => commands::drill::run(a, &mut out),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::man::run(a),
    });
    if cli.command.json() {
        println!("{}", out.finish(&result));
    }
    if let Err(err) = result {
        eprintln!("hactl: {}", hactl::terminal::escape(&format!("{err:#}")));
        std::process::exit(exit::code_for(&err));
    }
    std::process::exit(exit::OK);
}

/// Flags clap refused (exit 2); with `--json` among them, the envelope says so on stdout too.
fn refuse_flags(err: clap::Error) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if err.use_stderr() && args.iter().any(|a| a == "--json") {
        let command = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .filter(|a| {
                use clap::CommandFactory;
                Cli::command().find_subcommand(a.as_str()).is_some()
            })
            .map_or("hactl", String::as_str);
        let refused = exit::InvalidInput(err.to_string().trim_end().to_string());
        println!("{}", Envelope::new(command).finish(&Err(refused.into())));
    }
    err.exit()
}
