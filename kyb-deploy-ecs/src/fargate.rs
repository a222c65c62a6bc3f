//! Fargate's task size rules, checked before any API call.

use std::fmt::Write as _;

/// The task memory sizes (MiB) Fargate accepts for a task cpu size (CPU units).
fn memory_choices(cpu: u32) -> Option<Vec<u32>> {
    let range = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122_880, 8192),
        _ => return None,
    })
}

/// The task cpu sizes Fargate accepts, in CPU units.
pub(crate) const CPU_CHOICES: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// Parses a task `cpu` value as ECS accepts it: CPU units (`"1024"`) or vCPUs (`"1 vCPU"`,
/// `"0.25 vcpu"`). Returns CPU units.
pub(crate) fn parse_cpu(value: &str) -> Option<u32> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if let Some(number) = lower.strip_suffix("vcpu") {
        let vcpus: f64 = number.trim().parse().ok()?;
        let units = vcpus * 1024.0;
        return (units.fract() == 0.0 && units > 0.0 && units <= f64::from(u32::MAX))
            .then_some(units as u32);
    }
    v.parse().ok().filter(|&u| u > 0)
}

/// Parses a task `memory` value as ECS accepts it: MiB (`"2048"`) or GB (`"2 GB"`,
/// `"0.5gb"`). Returns MiB.
pub(crate) fn parse_memory(value: &str) -> Option<u32> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if let Some(number) = lower.strip_suffix("gb") {
        let gb: f64 = number.trim().parse().ok()?;
        let mib = gb * 1024.0;
        return (mib.fract() == 0.0 && mib > 0.0 && mib <= f64::from(u32::MAX))
            .then_some(mib as u32);
    }
    v.parse().ok().filter(|&m| m > 0)
}

/// Checks a Fargate task's size. `cpu` and `memory` are the task-level values as written;
/// `containers` are each container's name, cpu units and hard memory limit (MiB).
/// Returns every problem found, each naming the fix.
pub(crate) fn check_size(
    cpu: Option<&str>,
    memory: Option<&str>,
    containers: &[(String, u32, Option<u32>)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let (Some(cpu_text), Some(memory_text)) = (cpu, memory) else {
        problems.push(
            "Fargate tasks need task-level \"cpu\" and \"memory\" (for example \"cpu\": \"256\", \"memory\": \"512\")"
                .to_owned(),
        );
        return problems;
    };
    let Some(cpu) = parse_cpu(cpu_text) else {
        problems.push(format!(
            "task cpu {cpu_text:?} is not a number of CPU units (\"1024\") or vCPUs (\"1 vCPU\")"
        ));
        return problems;
    };
    let Some(memory) = parse_memory(memory_text) else {
        problems.push(format!(
            "task memory {memory_text:?} is not a number of MiB (\"2048\") or GB (\"2 GB\")"
        ));
        return problems;
    };
    match memory_choices(cpu) {
        None => problems.push(format!(
            "task cpu {cpu} is not a Fargate size; use one of {}",
            list(&CPU_CHOICES)
        )),
        Some(choices) if !choices.contains(&memory) => {
            let mut message = format!(
                "Fargate does not offer cpu {cpu} with memory {memory} MiB; with cpu {cpu} use memory "
            );
            let _ = write!(message, "{}", list(&choices));
            if let Some(fit) = CPU_CHOICES
                .iter()
                .find(|&&c| memory_choices(c).is_some_and(|m| m.contains(&memory)))
            {
                let _ = write!(message, ", or cpu {fit} for {memory} MiB");
            }
            problems.push(message);
        }
        Some(_) => {}
    }
    let container_cpu: u32 = containers.iter().map(|c| c.1).sum();
    if container_cpu > cpu {
        problems.push(format!(
            "the containers reserve {container_cpu} CPU units, more than the task's {cpu}; lower the containers' \"cpu\" or raise the task's"
        ));
    }
    let container_memory: u32 = containers.iter().filter_map(|c| c.2).sum();
    if container_memory > memory {
        problems.push(format!(
            "the containers' memory limits add up to {container_memory} MiB, more than the task's {memory} MiB; lower the containers' \"memory\" or raise the task's"
        ));
    }
    problems
}

fn list(values: &[u32]) -> String {
    if values.len() > 8 {
        let step = values[1] - values[0];
        return format!(
            "{}-{} in steps of {step}",
            values[0],
            values[values.len() - 1]
        );
    }
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn units_and_vcpus_are_the_same_size() {
        assert_eq!(parse_cpu("1024"), Some(1024));
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu("0.25 vcpu"), Some(256));
        assert_eq!(parse_cpu("0.3 vCPU"), None);
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert_eq!(parse_memory("lots"), None);
    }

    #[test]
    fn valid_pairs_pass() {
        for (cpu, memory) in [("256", "512"), ("1 vCPU", "2 GB"), ("16384", "122880")] {
            assert!(
                check_size(Some(cpu), Some(memory), &[]).is_empty(),
                "{cpu}/{memory}"
            );
        }
    }

    #[test]
    fn an_invalid_pair_names_the_sizes_that_fit() {
        let problems = check_size(Some("256"), Some("4096"), &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("with cpu 256 use memory 512, 1024, 2048"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].contains("or cpu 512 for 4096 MiB"),
            "{}",
            problems[0]
        );
        let problems = check_size(Some("300"), Some("512"), &[]);
        assert!(
            problems[0].contains("use one of 256, 512, 1024"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn containers_must_fit_in_the_task() {
        let containers = [
            ("a".to_owned(), 200, Some(400)),
            ("b".to_owned(), 100, Some(200)),
        ];
        let problems = check_size(Some("256"), Some("512"), &containers);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(check_size(None, Some("512"), &[])[0].contains("need task-level"));
    }

    proptest! {
        #[test]
        fn every_listed_pair_is_accepted(cpu_index in 0..CPU_CHOICES.len(), pick in 0usize..64) {
            let cpu = CPU_CHOICES[cpu_index];
            let choices = memory_choices(cpu).unwrap();
            let memory = choices[pick % choices.len()];
            prop_assert!(check_size(Some(&cpu.to_string()), Some(&memory.to_string()), &[]).is_empty());
        }

        #[test]
        fn an_unlisted_memory_is_refused(cpu_index in 0..CPU_CHOICES.len(), memory in 1u32..200_000) {
            let cpu = CPU_CHOICES[cpu_index];
            let listed = memory_choices(cpu).unwrap().contains(&memory);
            prop_assert_eq!(check_size(Some(&cpu.to_string()), Some(&memory.to_string()), &[]).is_empty(), listed);
        }
    }
}
