use clap::Parser;
use hactl::cli::{Cli, Command};
use hactl::{commands, exit};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Validate(a) => commands::validate::run(a),
        Command::Render(a) => commands::render::run(a),
        Command::Up(a) => commands::up::run(a),
        Command::AddNode(a) => commands::add_node::run(a),
        Command::RemoveNode(a) => commands::remove_node::run(a),
        Command::Reset(a) => commands::reset::run(a),
        Command::Status(a) => commands::status::run(a),
        Command::SetPolicy(a) => commands::set_policy::run(a),
        Command::Init(a) => commands::init::run(a),
        Command::Endpoints(a) => commands::endpoints::run(a),
        Command::Vip(a) => commands::vip::run(a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::man::run(a),
    };
    if let Err(err) = result {
        eprintln!("hactl: {}", hactl::terminal::escape(&format!("{err:#}")));
        std::process::exit(exit::code_for(&err));
    }
    std::process::exit(exit::OK);
}
