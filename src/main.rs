//! The `markdrop` binary: parses the command line, reads the settings, starts telemetry and
//! calls into the library. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use markdrop::config::{
    self, ConfigError, RedisSettings, Settings, StoreSettings, TelemetrySettings,
};
use markdrop::emulator::{EmulatorConfig, parse_control_secret};
use markdrop::{cli, telemetry};

/// Exit status for a configuration problem (a missing or malformed variable).
const EXIT_CONFIG: u8 = 2;

/// Keeps an HTML copy next to every Markdown file in a Dropbox, updated seconds after it changes.
///
/// Configuration comes from environment variables (and a `.env` file in the working directory);
/// see docs/OPERATIONS.md for the full table.
#[derive(Debug, Parser)]
#[command(name = "markdrop", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web app and the sync worker in one process, for a single machine.
    ///
    /// Needs DROPBOX_APP_KEY, DROPBOX_APP_SECRET and SECRET_KEY. Uses Redis when REDIS_URL is
    /// set, otherwise an embedded store in DATA_DIR.
    Serve,
    /// Run the web process: the pages, "Connect Dropbox" (OAuth) and the Dropbox webhook.
    ///
    /// Needs DROPBOX_APP_KEY, DROPBOX_APP_SECRET, SECRET_KEY and REDIS_URL (shared with the
    /// workers). Listens on HOST:PORT.
    Web,
    /// Run a sync worker: converts the Markdown of every account that has changes waiting.
    ///
    /// Needs DROPBOX_APP_KEY, DROPBOX_APP_SECRET, SECRET_KEY and REDIS_URL (shared with the
    /// web processes). Start as many as the load needs.
    Worker,
    /// Move a Redis deployment's keys from the layout before shards to today's, once.
    ///
    /// Stop every `web` and `worker` process first: old and new processes read different
    /// keys. Needs REDIS_URL (and REDIS_CLUSTER, REDIS_KEY_PREFIX, REDIS_SHARDS as the new
    /// processes will have them). Safe to run again; prints a one-line summary.
    Migrate {
        /// The prefix of the old keys, hash tag and all (`{markdrop}:`). Default:
        /// REDIS_KEY_PREFIX.
        #[arg(long, value_name = "PREFIX")]
        from_prefix: Option<String>,
        /// Once every account is copied, delete the old keys.
        #[arg(long)]
        delete_old: bool,
    },
    /// Print the HTML document markdrop would upload for a Markdown file.
    ///
    /// Reads FILE, or standard input when no FILE is given, and writes the complete document
    /// to standard output (or --output). Needs no configuration. FILE is rendered with the
    /// markdrop.toml settings of its folder and every folder above it (up to --root); a note
    /// they exclude, or that says `markdrop: false`, is an error and writes nothing.
    Render {
        /// The Markdown file to render; its name is the title of last resort.
        file: Option<PathBuf>,
        /// Write the document to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The folder that plays the part of the Dropbox: wikilinks resolve against the files
        /// under it, as the worker resolves them against the account, and markdrop.toml files
        /// are read from it down to FILE's folder. Default: FILE's folder for wikilinks, the
        /// file system's root for settings.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Try markdrop on this machine, no Dropbox account needed.
    ///
    /// Runs the product against a built-in Dropbox emulator whose files are the folder DIR
    /// (created, with a welcome note, when missing or empty). Needs no configuration.
    Demo {
        /// The folder that plays the part of your Dropbox.
        #[arg(default_value = "markdrop-demo")]
        dir: PathBuf,
        /// The port markdrop's site listens on, on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 5000)]
        port: u16,
        /// Connect the folder's account at once, skipping "Connect Dropbox" in the browser.
        #[arg(long)]
        link: bool,
    },
    /// Run the local Dropbox emulator on its own, for scripts and manual testing.
    ///
    /// It answers as Dropbox's api, content and www hosts at once, on 127.0.0.1:PORT, and has a
    /// control surface under /_emulator/ (create accounts, write files, inject faults) that
    /// needs the control secret as `Authorization: Bearer <secret>`.
    Emulator {
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8710)]
        port: u16,
        /// The app key clients must present.
        #[arg(long, env = "DROPBOX_APP_KEY")]
        app_key: String,
        /// The app secret: checked on the token endpoint, and signs webhooks. Prefer the
        /// variable: a command line shows in `ps` and in shell history.
        #[arg(long, env = "DROPBOX_APP_SECRET", hide_env_values = true)]
        app_secret: String,
        /// Where to POST signed webhook notifications after every change.
        #[arg(long)]
        webhook_url: Option<url::Url>,
        /// Approve every authorization at once instead of showing the consent page. For tests
        /// only: anyone who can reach the port then gets a code for the signed-in account.
        #[arg(long)]
        auto_approve: bool,
        /// The control secret (32+ characters): it opens the /_emulator/ routes and mints the
        /// owner links a browser needs to "Allow" on the consent page. Made up and printed at
        /// start when not given. Prefer the variable: a command line shows in `ps`.
        #[arg(long, env = "EMULATOR_CONTROL_SECRET", hide_env_values = true)]
        control_secret: Option<String>,
        /// A folder that is the Dropbox of one account, signed in for the consent page: its
        /// files are imported, and edits on either side show on the other.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Before parsing: some arguments fall back to variables, which `.env` may hold.
    if let Err(error) = config::load_dotenv() {
        return config_error(&error);
    }
    let cli = Cli::parse();
    match TelemetrySettings::from_env() {
        Ok(settings) => telemetry::init(&settings),
        Err(error) => return config_error(&error),
    }
    match cli.command {
        Command::Render { file, output, root } => {
            report(cli::render_file(file.as_deref(), output.as_deref(), root.as_deref()))
        }
        Command::Serve => match Settings::from_env() {
            Ok(settings) => report(cli::run_serve(&settings)),
            Err(error) => config_error(&error),
        },
        Command::Web => with_redis("web", cli::run_web),
        Command::Worker => with_redis("worker", cli::run_worker),
        Command::Migrate { from_prefix, delete_old } => match RedisSettings::from_env() {
            Ok(redis) => report(cli::run_migrate(&redis, from_prefix.as_deref(), delete_old)),
            Err(error) => config_error(&error),
        },
        Command::Emulator {
            port,
            app_key,
            app_secret,
            webhook_url,
            auto_approve,
            control_secret,
            dir,
        } => {
            let mut config = EmulatorConfig::new(app_key, app_secret);
            config.webhook_url = webhook_url;
            config.auto_approve = auto_approve;
            // Checked here, not by clap, whose message would repeat the refused value.
            config.control_secret = match control_secret.map(parse_control_secret).transpose() {
                Ok(secret) => secret,
                Err(error) => {
                    eprintln!("markdrop: {error}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            report(cli::run_emulator(config, port, dir.as_deref()))
        }
        Command::Demo { dir, port, link } => report(markdrop::demo::run(&dir, port, link)),
    }
}

/// Runs a command that needs the settings and a shared Redis.
fn with_redis(command: &str, run: fn(&Settings, &StoreSettings) -> anyhow::Result<()>) -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return config_error(&error),
    };
    match settings.shared_redis(command) {
        Ok(redis) => report(run(&settings, redis)),
        Err(error) => config_error(&error),
    }
}

fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("markdrop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(error: &ConfigError) -> ExitCode {
    eprintln!("markdrop: {error}");
    ExitCode::from(EXIT_CONFIG)
}
