//! The conformance cases every engine runs, through the `run` command
//! (`tests/conformance.rs`) and through containerd with `ctr` (`tests/containerd_e2e.rs`):
//! one table, so both paths check the same behaviour. Cases that need more than
//! "arguments in, output and status out" (stdin, files, signals, settings) are tests of
//! their own in both files.

/// One program run: corpus program, extra arguments, expected stdout and status.
pub struct Case {
    pub program: &'static str,
    pub args: &'static [&'static str],
    /// `{argv0}` stands for the program name the runner passes as `argv[0]`.
    pub stdout: &'static str,
    /// A fragment stderr must contain, if any.
    pub stderr: Option<&'static str>,
    pub status: i32,
}

impl Case {
    pub fn expected_stdout(&self, argv0: &str) -> String {
        self.stdout.replace("{argv0}", argv0)
    }
}

const fn case(
    program: &'static str,
    args: &'static [&'static str],
    stdout: &'static str,
    status: i32,
) -> Case {
    Case { program, args, stdout, stderr: None, status }
}

pub const CASES: &[Case] = &[
    Case { stderr: Some("hello on stderr\n"), ..case("hello", &[], "hello from wasm\n", 0) },
    case(
        "args",
        &["one", "two words", "--flag"],
        "argv[0]={argv0}\nargv[1]=one\nargv[2]=two words\nargv[3]=--flag\n",
        0,
    ),
    case("exit", &["0"], "", 0),
    case("exit", &["1"], "", 1),
    case("exit", &["42"], "", 42),
    case("exit", &["0", "return"], "", 0),
    case("exit", &["1", "return"], "", 1),
    case("exit", &["42", "return"], "", 42),
    // wasmtime-wasi and wasi-common refuse 126 and more; the plugins give it (as natively).
    case("exit", &["200"], "", 200),
    case("exit42", &[], "", 42),
    case("entry", &[], "", 0),
    case("clock_random", &[], "clock moves\nwall clock after 2020: yes\nrandom ok\n", 0),
    case("grow", &[], "", 100),
    Case { stderr: Some("unreachable"), ..case("trap", &[], "", 134) },
];
