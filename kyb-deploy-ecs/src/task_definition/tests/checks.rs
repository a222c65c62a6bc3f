//! Fargate checks.

use super::*;

#[test]
fn check_reports_each_fargate_problem() {
    let problems_of = |edit: &dyn Fn(&mut TaskDefinitionSpec)| {
        let mut s = spec();
        edit(&mut s);
        s.check()
    };
    let problems = problems_of(&|s| s.network_mode = Some(NetworkMode::Bridge));
    assert_eq!(
        problems,
        ["Fargate tasks need \"networkMode\": \"awsvpc\""],
        "{problems:?}"
    );
    let problems = problems_of(&|s| s.network_mode = None);
    assert_eq!(problems.len(), 1, "{problems:?}");

    let problems = problems_of(&|s| s.cpu = None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("need task-level \"cpu\" and \"memory\""),
        "{problems:?}"
    );
    let problems = problems_of(&|s| s.memory = None);
    assert!(
        problems[0].contains("need task-level \"cpu\" and \"memory\""),
        "{problems:?}"
    );

    let problems = problems_of(&|s| {
        s.cpu = Some("256".into());
        s.memory = Some("4 GB".into());
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("Fargate does not offer cpu 256 with memory 4096 MiB"),
        "{problems:?}"
    );

    let problems = problems_of(&|s| {
        s.containers[0].cpu = 2048;
        s.containers[0].memory = Some(4096);
    });
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("reserve 2048 CPU units, more than the task's 1024"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("add up to 4096 MiB, more than the task's 2048 MiB"),
        "{problems:?}"
    );

    // Every problem at once, not the first only.
    let problems = problems_of(&|s| {
        s.network_mode = Some(NetworkMode::Host);
        s.cpu = Some("300".into());
    });
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn check_leaves_non_fargate_tasks_to_ecs_but_needs_a_family_and_containers() {
    let mut s = spec();
    s.requires_compatibilities = vec![Compatibility::Ec2];
    s.network_mode = Some(NetworkMode::Bridge);
    s.cpu = None;
    s.memory = None;
    assert!(s.check().is_empty(), "{:?}", s.check());
    s.family.clear();
    s.containers.clear();
    assert_eq!(
        s.check(),
        ["\"family\" is missing", "\"containerDefinitions\" is empty"]
    );
}
