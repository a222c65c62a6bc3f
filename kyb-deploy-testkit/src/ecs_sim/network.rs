//! awsvpc networking: the subnets and security groups a network configuration may name, and
//! the elastic network interface each awsvpc task gets, with a private IP of its subnet.
//!
//! The simulator has no VPC: each subnet stands for a `/24` of `10.0.0.0/16` derived from its
//! id, so that every task of one subnet gets an address of the same block.

use rand::Rng as _;
use rand::rngs::StdRng;
use serde_json::Value;

use super::api::ApiError;
use super::model::{Eni, Ids, KnownNetwork};

/// Checks the `awsvpcConfiguration` of a `networkConfiguration`: at least one subnet, at
/// most 16 subnets and 5 security groups, ids of the right shape, and, when the simulator
/// was told which exist, only those.
pub(crate) fn check(network: &Value, known: &KnownNetwork) -> Result<(), ApiError> {
    let config = &network["awsvpcConfiguration"];
    if !config.is_object() {
        return Err(ApiError::invalid(
            "Network Configuration must contain an awsvpcConfiguration.",
        ));
    }
    let list = |name: &str| -> Vec<String> {
        config[name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let subnets = list("subnets");
    let groups = list("securityGroups");
    if subnets.is_empty() {
        return Err(ApiError::invalid("subnets can not be empty."));
    }
    if subnets.len() > 16 {
        return Err(ApiError::invalid("subnets can have at most 16 items."));
    }
    if groups.len() > 5 {
        return Err(ApiError::invalid(
            "securityGroups can have at most 5 items.",
        ));
    }
    if let Some(bad) = subnets.iter().find(|s| !s.starts_with("subnet-")) {
        return Err(ApiError::invalid(format!(
            "Error retrieving subnet information for [{bad}]: The subnet ID '{bad}' is malformed"
        )));
    }
    if let Some(bad) = groups.iter().find(|s| !s.starts_with("sg-")) {
        return Err(ApiError::invalid(format!(
            "Error retrieving security group information for [{bad}]: Invalid id: \"{bad}\" \
             (expecting \"sg-...\")"
        )));
    }
    if let Some(known) = &known.subnets
        && let Some(missing) = subnets.iter().find(|s| !known.contains(*s))
    {
        return Err(ApiError::invalid(format!(
            "Error retrieving subnet information for [{missing}]: The subnet ID '{missing}' \
             does not exist (ErrorCode: InvalidSubnetID.NotFound)"
        )));
    }
    if let Some(known) = &known.security_groups
        && let Some(missing) = groups.iter().find(|g| !known.contains(*g))
    {
        return Err(ApiError::invalid(format!(
            "Error retrieving security group information for [{missing}]: The security group \
             '{missing}' does not exist (ErrorCode: InvalidGroup.NotFound)"
        )));
    }
    Ok(())
}

/// The interface of a new awsvpc task in the first subnet of `network`.
pub(crate) fn new_eni(network: &Value, region: &str, rng: &mut StdRng) -> Option<Eni> {
    let subnet = network["awsvpcConfiguration"]["subnets"][0].as_str()?;
    let block = subnet_block(subnet);
    let host: u8 = rng.random_range(4..=254);
    let private_ip = format!("10.0.{block}.{host}");
    let dashed = private_ip.replace('.', "-");
    let private_dns_name = if region == "us-east-1" {
        format!("ip-{dashed}.ec2.internal")
    } else {
        format!("ip-{dashed}.{region}.compute.internal")
    };
    let mac: Vec<String> = (0..5)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect();
    Some(Eni {
        attachment_id: Ids::uuid(rng),
        subnet_id: subnet.to_owned(),
        interface_id: format!("eni-{:017x}", rng.random::<u128>() & ((1 << 68) - 1)),
        mac_address: format!("0e:{}", mac.join(":")),
        private_ip,
        private_dns_name,
    })
}

/// The third octet of a subnet's `10.0.N.0/24`: a stable hash (FNV-1a) of its id.
fn subnet_block(subnet: &str) -> u8 {
    let hash = subnet.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash.to_le_bytes()[0]
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use serde_json::json;

    use super::*;

    fn network(subnets: &[&str], groups: &[&str]) -> Value {
        json!({"awsvpcConfiguration": {"subnets": subnets, "securityGroups": groups}})
    }

    #[test]
    fn any_id_of_the_right_shape_passes_unless_the_known_ones_are_set() {
        let open = KnownNetwork::default();
        assert!(check(&network(&["subnet-1"], &["sg-1"]), &open).is_ok());
        let error = check(&network(&["subnet-1"], &["group-1"]), &open).unwrap_err();
        assert_eq!(error.code, "InvalidParameterException");
        assert!(check(&network(&[], &[]), &open).is_err());

        let closed = KnownNetwork {
            subnets: Some(["subnet-1".to_owned()].into()),
            security_groups: Some(["sg-1".to_owned()].into()),
        };
        assert!(check(&network(&["subnet-1"], &["sg-1"]), &closed).is_ok());
        let error = check(&network(&["subnet-2"], &["sg-1"]), &closed).unwrap_err();
        assert!(
            error.message.contains("InvalidSubnetID.NotFound"),
            "{error:?}"
        );
        let error = check(&network(&["subnet-1"], &["sg-2"]), &closed).unwrap_err();
        assert!(error.message.contains("InvalidGroup.NotFound"), "{error:?}");
    }

    #[test]
    fn tasks_of_one_subnet_share_its_block() {
        let mut rng = StdRng::seed_from_u64(3);
        let config = network(&["subnet-0abc"], &[]);
        let a = new_eni(&config, "eu-west-1", &mut rng).unwrap();
        let b = new_eni(&config, "eu-west-1", &mut rng).unwrap();
        let prefix = |ip: &str| ip.rsplit_once('.').unwrap().0.to_owned();
        assert_eq!(prefix(&a.private_ip), prefix(&b.private_ip));
        assert_eq!(a.subnet_id, "subnet-0abc");
        assert!(a.private_dns_name.ends_with(".eu-west-1.compute.internal"));
        assert!(a.interface_id.starts_with("eni-") && a.interface_id.len() == 21);
        assert_eq!(a.mac_address.split(':').count(), 6);
    }
}
