//! The arms of a hunt: one condition each (`--pressure`), the control
//! (`none`) always first. A limit arm is the batch's own limits with one
//! tightened (`Limits::over`); a noise arm adds load beside it.

use std::fmt;
use std::str::FromStr;

use crate::config::Limits;

/// One `--pressure SPEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// The control: the batch as configured.
    None,
    /// `io=10M`: reads and writes each limited to this many bytes a second.
    Io(u64),
    /// `cpu=50%`: CPU time per wall-clock time, in percent of one CPU.
    Cpu(u32),
    /// `memory=512M`: the throttling point (`memory.high`).
    Memory(u64),
    /// `noise=cpu:2`: this many busy-looping sibling processes.
    NoiseCpu(u32),
    /// `noise=io`: a sibling writing and syncing a scratch file in a loop.
    NoiseIo,
}

/// The most CPU noise processes one arm may start.
const MAX_NOISE: u32 = 64;

impl FromStr for Pressure {
    type Err = String;

    fn from_str(s: &str) -> Result<Pressure, String> {
        let bad = |why: &str| {
            format!(
                "invalid pressure {s:?}: {why} (use none, io=10M, cpu=50%, memory=512M, noise=cpu:2 or noise=io)"
            )
        };
        if s == "none" {
            return Ok(Pressure::None);
        }
        let Some((key, value)) = s.split_once('=') else {
            return Err(bad("expected KEY=VALUE"));
        };
        match key {
            "io" => crate::size::parse(value)
                .map(Pressure::Io)
                .map_err(|e| bad(&e)),
            "memory" => crate::size::parse(value)
                .map(Pressure::Memory)
                .map_err(|e| bad(&e)),
            "cpu" => {
                let n = value.strip_suffix('%').unwrap_or(value);
                match n.parse::<u32>() {
                    Ok(p) if (1..=100_000).contains(&p) => Ok(Pressure::Cpu(p)),
                    _ => Err(bad("cpu takes a percentage of one CPU, 1% or more")),
                }
            }
            "noise" => match value {
                "io" => Ok(Pressure::NoiseIo),
                "cpu" => Ok(Pressure::NoiseCpu(1)),
                _ => match value.strip_prefix("cpu:").map(str::parse::<u32>) {
                    Some(Ok(n)) if (1..=MAX_NOISE).contains(&n) => Ok(Pressure::NoiseCpu(n)),
                    _ => Err(bad(&format!(
                        "noise is `io` or `cpu:N` with N from 1 to {MAX_NOISE}"
                    ))),
                },
            },
            _ => Err(bad(&format!("unknown pressure {key:?}"))),
        }
    }
}

impl fmt::Display for Pressure {
    /// As it is written on the command line, canonically (`io=10M`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pressure::None => f.write_str("none"),
            Pressure::Io(b) => write!(f, "io={}", crate::size::exact(*b)),
            Pressure::Cpu(p) => write!(f, "cpu={p}%"),
            Pressure::Memory(b) => write!(f, "memory={}", crate::size::exact(*b)),
            Pressure::NoiseCpu(n) => write!(f, "noise=cpu:{n}"),
            Pressure::NoiseIo => f.write_str("noise=io"),
        }
    }
}

impl Pressure {
    /// A name safe as a directory and batch name: `none`, `io-10M`,
    /// `cpu-50pct`, `memory-512M`, `noise-cpu-2`, `noise-io`.
    pub fn slug(&self) -> String {
        self.to_string()
            .replace(['=', ':'], "-")
            .replace('%', "pct")
    }

    /// What the arm presses on, for the verdict: "sensitive to I/O".
    pub fn resource(&self) -> &'static str {
        match self {
            Pressure::None => "nothing",
            Pressure::Io(_) => "I/O",
            Pressure::Cpu(_) => "CPU",
            Pressure::Memory(_) => "memory",
            Pressure::NoiseCpu(_) => "CPU noise",
            Pressure::NoiseIo => "I/O noise",
        }
    }

    /// The limits an attempt of this arm runs under: the batch's own, with
    /// this arm's over them.
    pub fn limits(&self, batch: &Limits) -> Limits {
        let mine = match *self {
            Pressure::Io(b) => Limits {
                io_read: Some(b),
                io_write: Some(b),
                ..Limits::default()
            },
            Pressure::Cpu(p) => Limits {
                cpu: Some(p),
                ..Limits::default()
            },
            Pressure::Memory(b) => Limits {
                memory_high: Some(b),
                ..Limits::default()
            },
            Pressure::None | Pressure::NoiseCpu(_) | Pressure::NoiseIo => Limits::default(),
        };
        mine.over(batch)
    }
}

/// The arms in the order they run: the control first (added when not
/// given), then the others as given, each once.
pub fn arms(given: &[Pressure]) -> Vec<Pressure> {
    let mut arms = vec![Pressure::None];
    for p in given {
        if !arms.contains(p) {
            arms.push(*p);
        }
    }
    arms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back() {
        for (text, want, slug) in [
            ("none", Pressure::None, "none"),
            ("io=10M", Pressure::Io(10 << 20), "io-10M"),
            ("cpu=50%", Pressure::Cpu(50), "cpu-50pct"),
            ("memory=512M", Pressure::Memory(512 << 20), "memory-512M"),
            ("noise=cpu:2", Pressure::NoiseCpu(2), "noise-cpu-2"),
            ("noise=io", Pressure::NoiseIo, "noise-io"),
        ] {
            let p: Pressure = text.parse().unwrap();
            assert_eq!(p, want);
            assert_eq!(p.to_string(), text);
            assert_eq!(p.slug(), slug);
            crate::config::BatchName::new(&p.slug()).unwrap();
        }
        assert_eq!("cpu=50".parse::<Pressure>(), Ok(Pressure::Cpu(50)));
        assert_eq!("noise=cpu".parse::<Pressure>(), Ok(Pressure::NoiseCpu(1)));
        for bad in [
            "",
            "io",
            "io=",
            "io=fast",
            "cpu=0%",
            "noise=cpu:0",
            "noise=disk",
            "gpu=1",
        ] {
            let e = bad.parse::<Pressure>().unwrap_err();
            assert!(e.starts_with(&format!("invalid pressure {bad:?}")), "{e}");
        }
    }

    #[test]
    fn limits_go_over_the_batchs_own() {
        let batch = Limits {
            io_write: Some(50 << 20),
            memory: Some(1 << 30),
            ..Limits::default()
        };
        let io = Pressure::Io(4 << 20).limits(&batch);
        assert_eq!(io.io_read, Some(4 << 20));
        assert_eq!(io.io_write, Some(4 << 20));
        assert_eq!(io.memory, Some(1 << 30));
        assert_eq!(Pressure::Cpu(50).limits(&batch).cpu, Some(50));
        assert_eq!(
            Pressure::Memory(512 << 20).limits(&batch).memory_high,
            Some(512 << 20)
        );
        assert_eq!(Pressure::NoiseIo.limits(&batch), batch);
        assert_eq!(Pressure::None.limits(&batch), batch);
    }

    #[test]
    fn the_control_comes_first_and_each_arm_once() {
        let cpu = Pressure::Cpu(50);
        assert_eq!(arms(&[]), vec![Pressure::None]);
        assert_eq!(arms(&[cpu, Pressure::None, cpu]), vec![Pressure::None, cpu]);
    }
}
