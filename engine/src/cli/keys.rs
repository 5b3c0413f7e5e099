//! `ferry keys generate [--dir D]`: the Ed25519 key pair `[output] sign_with` signs
//! manifests with.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new key pair: ferry.key (the secret, readable by its owner only) and
    /// ferry.pub (give it to the snapshots' recipients). Never overwrites a key.
    Generate {
        /// Where to write them (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

pub fn main(args: KeysArgs) -> Result<()> {
    match args.command {
        KeysCommand::Generate { dir } => {
            let (secret, public) = ferry::package::sign::generate(&dir)?;
            println!("secret key: {} (set `sign_with` in a job's [output] to it; keep it private)", secret.display());
            println!("public key: {} (recipients verify with `ferry verify --key` or `minisign -V -m manifest.json -p`)", public.display());
        }
    }
    Ok(())
}
