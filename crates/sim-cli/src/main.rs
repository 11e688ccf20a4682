use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    let cli = adloop_sim::Cli::parse();
    let results_table = adloop_sim::execute(cli)?;
    print!("{results_table}");
    Ok(())
}
