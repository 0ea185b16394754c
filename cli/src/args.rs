//! The command line: commands, flags and their parsers.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Configuration (first set wins): --api-key/--base-url; KILN_API_KEY/KILN_BASE_URL;
the config file ($KILN_CONFIG, else $XDG_CONFIG_HOME/kiln/config.toml, else
~/.config/kiln/config.toml) with `api_key = \"sk-…\"` and `base_url = \"https://…\"`;
the base URL defaults to the local dev stack, http://127.0.0.1:8787.

Exit codes: 0 success, 1 an error (the API's message is printed), 2 a usage error,
130 interrupted (a job being followed keeps running).";

/// `kiln`: generate images and videos with Kiln, and manage jobs, keys and credits.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print the API's JSON on stdout instead of text (for scripts).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// Print no progress on stderr.
    #[arg(long, short, global = true, help_heading = "Global options")]
    pub quiet: bool,

    /// The API's base URL (beats KILN_BASE_URL and the config file).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub base_url: Option<String>,

    /// The API key (beats KILN_API_KEY and the config file; prefer those: a flag can
    /// end up in the shell's history).
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        help_heading = "Global options"
    )]
    pub api_key: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an image or a video: submit, show its progress, download the outputs.
    #[command(subcommand)]
    Generate(Generate),
    /// Jobs: get, watch, cancel, list the active ones.
    #[command(subcommand)]
    Jobs(Jobs),
    /// The account's balance.
    Credits,
    /// The account's charges and credits, newest first.
    Usage {
        /// Rows per page (1–100; the API's default is 50).
        #[arg(long)]
        limit: Option<u32>,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// API keys: list, create, revoke.
    #[command(subcommand)]
    Keys(Keys),
    /// Upload an image (PNG, JPEG, WebP, GIF) to use as an input of a generation.
    Upload {
        /// The image file.
        file: PathBuf,
    },
    /// Webhooks: the signing secret, a job's delivery log, replaying its terminal event.
    #[command(subcommand)]
    Webhooks(Webhooks),
    /// The CLI's own settings: show them, or save one in the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The base URL and key in effect and where each comes from (the key masked).
    Show,
    /// Save `api_key` or `base_url` in the config file (created readable by you only).
    Set {
        #[arg(value_parser = ["api_key", "base_url"])]
        name: String,
        /// The value; `-` reads it from stdin (keeps a key out of the shell's history).
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// An image (FLUX.2-dev, $0.02 per image).
    Image(ImageArgs),
    /// A video (LTX-2.3, $0.04 per second of video).
    Video(VideoArgs),
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// What to draw.
    pub prompt: String,
    /// Width×height, e.g. 1024x768 (512–2048, multiples of 64; default 1024x1024).
    #[arg(long, value_parser = parse_size, value_name = "WxH")]
    pub size: Option<Size>,
    /// Denoising steps (8–50; default 20).
    #[arg(long)]
    pub steps: Option<u32>,
    /// The seed (-1 or absent: random).
    #[arg(long, allow_hyphen_values = true)]
    pub seed: Option<i64>,
    /// Guidance (1.0–10.0; default 4.0).
    #[arg(long)]
    pub cfg: Option<f64>,
    /// Images in this job (1–4).
    #[arg(short, long)]
    pub n: Option<u32>,
    /// A reference image (img2img), up to 4: a local file, uploaded first, or the
    /// filename of one of your uploads or outputs (`up_….png`, `job_…-0.png`).
    /// Repeat the flag for several.
    #[arg(long, value_name = "FILE")]
    pub input: Vec<String>,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Args)]
pub struct VideoArgs {
    /// What to film.
    pub prompt: String,
    /// The model: ltx-2.3 (two stages, default) or ltx-2.3-fast.
    #[arg(long)]
    pub model: Option<String>,
    /// Width×height: 960x544 (default), 544x960 or 768x768; the output is twice that.
    #[arg(long, value_parser = parse_size, value_name = "WxH")]
    pub size: Option<Size>,
    /// Frames at 24 fps: 25–241, of the form 8n+1 (default 121, about 5 s).
    #[arg(long)]
    pub frames: Option<u32>,
    /// The seed (-1 or absent: random).
    #[arg(long, allow_hyphen_values = true)]
    pub seed: Option<i64>,
    /// What to keep out of the video.
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// The first frame (image-to-video): a local image, uploaded first, or the filename
    /// of one of your uploads or outputs.
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

/// What `generate image` and `generate video` share.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Where to save the outputs (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not download the outputs; print their URLs.
    #[arg(long)]
    pub no_download: bool,
    /// Also POST the job's events to this URL, signed (see `kiln webhooks secret`).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Your reference for the job, echoed in the job and its webhooks.
    #[arg(long, value_name = "REF")]
    pub reply_ref: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Jobs {
    /// Show a job.
    Get { id: String },
    /// Follow a job's progress until it ends (Ctrl-C stops watching; the job goes on).
    Watch {
        id: String,
        /// Download the outputs when it completes.
        #[arg(long)]
        download: bool,
        /// Where to save them (implies --download; default: the current directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Cancel a job (refunds its hold).
    Cancel { id: String },
    /// The jobs that are queued or running.
    List,
}

#[derive(Debug, Subcommand)]
pub enum Keys {
    /// Every key of the account, revoked ones included (never the secrets).
    List,
    /// Create a key; its secret is printed once.
    Create {
        /// A name for it (default "default").
        #[arg(long)]
        label: Option<String>,
        /// A test-mode key (`sk-test-`): runs on the simulator and costs nothing.
        #[arg(long)]
        test: bool,
        /// The key's own rate limit, requests per minute (can only lower the limit).
        #[arg(long, value_name = "N")]
        rate_limit: Option<u32>,
    },
    /// Revoke a key (it fails at once, everywhere).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum Webhooks {
    /// The account's webhook signing secret.
    Secret {
        /// Make a new secret (the old one keeps signing beside it for 24 h).
        #[arg(long)]
        rotate: bool,
    },
    /// A job's webhook events and every delivery attempt.
    Deliveries { job: String },
    /// Send a job's terminal event to its webhook URL again, now.
    Replay { job: String },
}

/// An image or video size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// `1024x768` (also `1024X768`, `1024×768`). The API checks the values themselves and
/// says which are valid.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let bad = || format!("{s:?} is not a size; expected WIDTHxHEIGHT, e.g. 1024x768");
    let (w, h) = s.trim().split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let num = |v: &str| {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad)
    };
    Ok(Size {
        width: num(w)?,
        height: num(h)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kiln").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        let s = |w, h| {
            Ok(Size {
                width: w,
                height: h,
            })
        };
        assert_eq!(parse_size("1024x768"), s(1024, 768));
        assert_eq!(parse_size("768X512"), s(768, 512));
        assert_eq!(parse_size(" 960×544 "), s(960, 544));
        for bad in [
            "1024",
            "x768",
            "1024x",
            "axb",
            "-1x5",
            "1024x768x2",
            "0x512",
            "+5x5",
            "",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("99999999999x5").is_err());
        assert!(parse_size("12").unwrap_err().contains("e.g. 1024x768"));
    }

    #[test]
    fn generate_image_with_every_flag() {
        let cli = parse(&[
            "generate",
            "image",
            "a cat",
            "--size",
            "1024x768",
            "--steps",
            "8",
            "--seed",
            "-1",
            "--cfg",
            "3.5",
            "-n",
            "2",
            "--input",
            "cat.png",
            "--input",
            "up_abc.png",
            "--out",
            "pics",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Generate(Generate::Image(a)) = cli.command else {
            panic!("not generate image")
        };
        assert_eq!(a.prompt, "a cat");
        assert_eq!(
            a.size,
            Some(Size {
                width: 1024,
                height: 768
            })
        );
        assert_eq!(
            (a.steps, a.seed, a.cfg, a.n),
            (Some(8), Some(-1), Some(3.5), Some(2))
        );
        assert_eq!(a.input, ["cat.png", "up_abc.png"]);
        assert_eq!(a.submit.out, Some(PathBuf::from("pics")));
        assert!(!a.submit.no_download);
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["--json", "--base-url", "http://x", "credits"]).unwrap();
        assert!(cli.json && cli.base_url.as_deref() == Some("http://x"));
        let cli = parse(&["credits", "--json", "--api-key", "sk-1", "-q"]).unwrap();
        assert!(cli.json && cli.quiet && cli.api_key.as_deref() == Some("sk-1"));
        assert!(matches!(cli.command, Command::Credits));
    }

    #[test]
    fn the_other_commands() {
        let cli = parse(&[
            "generate",
            "video",
            "waves",
            "--model",
            "ltx-2.3-fast",
            "--frames",
            "49",
        ])
        .unwrap();
        let Command::Generate(Generate::Video(v)) = cli.command else {
            panic!()
        };
        assert_eq!(
            (v.model.as_deref(), v.frames),
            (Some("ltx-2.3-fast"), Some(49))
        );
        assert!(matches!(
            parse(&["jobs", "watch", "job_1", "--out", "d"]).unwrap().command,
            Command::Jobs(Jobs::Watch { ref id, download: false, out: Some(_) }) if id == "job_1"
        ));
        assert!(matches!(
            parse(&["jobs", "list"]).unwrap().command,
            Command::Jobs(Jobs::List)
        ));
        assert!(matches!(
            parse(&["keys", "create", "--label", "ci", "--test"])
                .unwrap()
                .command,
            Command::Keys(Keys::Create { test: true, .. })
        ));
        assert!(matches!(
            parse(&["usage", "--limit", "5"]).unwrap().command,
            Command::Usage {
                limit: Some(5),
                cursor: None
            }
        ));
        assert!(matches!(
            parse(&["webhooks", "secret", "--rotate"]).unwrap().command,
            Command::Webhooks(Webhooks::Secret { rotate: true })
        ));
        assert!(matches!(
            parse(&["webhooks", "replay", "job_1"]).unwrap().command,
            Command::Webhooks(Webhooks::Replay { .. })
        ));
        assert!(matches!(
            parse(&["config", "set", "api_key", "-"]).unwrap().command,
            Command::Config(ConfigCommand::Set { ref name, ref value }) if name == "api_key" && value == "-"
        ));
        assert!(parse(&["config", "set", "colour", "blue"]).is_err());
    }

    #[test]
    fn usage_errors() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(
            kind(&["generate", "image"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["generate", "image", "a", "--size", "big"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["generate", "image", "a", "--steps", "many"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["frobnicate"]), ErrorKind::InvalidSubcommand);
        assert_eq!(kind(&["jobs", "get"]), ErrorKind::MissingRequiredArgument);
        // Usage errors exit 2, as the CLI documents.
        assert_eq!(parse(&["frobnicate"]).unwrap_err().exit_code(), 2);
    }
}
