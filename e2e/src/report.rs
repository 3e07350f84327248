//! One `PASS`/`FAIL` line per assertion and the closing tally.

use std::fmt::Display;

#[derive(Default)]
pub struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    /// Records one assertion; `detail` is printed only when it fails. Returns `ok`.
    pub fn check(&mut self, name: &str, ok: bool, detail: impl Display) -> bool {
        if ok {
            self.passed += 1;
            println!("PASS {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail}");
        }
        ok
    }

    /// `check` for equality, with both sides in the failure detail.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, name: &str, got: T, want: T) -> bool {
        let ok = got == want;
        self.check(name, ok, format_args!("got {got:?}, want {want:?}"))
    }

    /// Something the suite could not check as asked, and what it checks instead.
    pub fn skip_note(&self, text: impl Display) {
        println!("SKIP-NOTE: {text}");
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    /// The closing line, e.g. `27 passed, 0 failed`.
    pub fn summary(&self) {
        println!("{} passed, {} failed", self.passed, self.failed);
    }
}
