//! The made-up AWS estate the traffic runs in: three accounts with one VPC each (prod, dev and a
//! shared-services VPC that also owns the transit gateway), subnets in two availability zones,
//! network interfaces with roles, and the public addresses on the other side. Identifiers come from
//! the seed; address plans are fixed so that incidents can name well-known hosts.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::rng::{Rng, Zipf};

pub(crate) const REGION: &str = "us-east-1";
pub(crate) const AZ_IDS: [&str; 2] = ["use1-az1", "use1-az2"];

pub(crate) const PROD: usize = 0;
pub(crate) const DEV: usize = 1;
/// The shared-services VPC: DNS, NTP, directory, CI, monitoring; its account owns the transit
/// gateway, and in transit-gateway corpora it is where internet traffic enters and leaves.
pub(crate) const SHARED: usize = 2;

/// Marks "no interface" where an interface index is expected (an internet address).
pub(crate) const EXTERNAL: u16 = u16::MAX;

/// The instance that exfiltrates data; fixed so that the truth file and its readers agree.
pub(crate) const EXFIL_HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 9, 132);

/// Distinct public IPv4 addresses traffic is exchanged with.
const PUBLIC_PEERS: usize = 50_000;
const PUBLIC_PEERS_V6: usize = 2_000;

/// What an interface does, which decides the traffic it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Lb,
    Web,
    App,
    Ecs,
    Eks,
    Db,
    Bastion,
    Windows,
    Batch,
    Dns,
    Ntp,
    Ldap,
    Monitor,
    Ci,
    Proxy,
    Logging,
    Nat,
    Endpoint,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Public = 0,
    App = 8,
    Data = 20,
    Mgmt = 30,
}

const TIERS: [Tier; 4] = [Tier::Public, Tier::App, Tier::Data, Tier::Mgmt];

/// Third octet of the transit-gateway attachment subnets (`10.x.255.0/28`, `10.x.255.16/28`).
const TGW_OCTET: u8 = 255;

struct RoleSpec {
    role: Role,
    tier: Tier,
    /// Interfaces in prod, dev and shared.
    counts: [usize; 3],
    /// `interface-type` of a requester-managed interface (no instance); `None` for instances.
    service: Option<&'static str>,
    dual_stack: bool,
}

const ROLES: &[RoleSpec] = &[
    RoleSpec {
        role: Role::Lb,
        tier: Tier::Public,
        counts: [3, 0, 0],
        service: Some("network_load_balancer"),
        dual_stack: true,
    },
    RoleSpec {
        role: Role::Web,
        tier: Tier::Public,
        counts: [14, 8, 0],
        service: None,
        dual_stack: true,
    },
    RoleSpec {
        role: Role::App,
        tier: Tier::App,
        counts: [26, 20, 0],
        service: None,
        dual_stack: true,
    },
    RoleSpec {
        role: Role::Ecs,
        tier: Tier::App,
        counts: [12, 8, 0],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Eks,
        tier: Tier::App,
        counts: [10, 8, 0],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Db,
        tier: Tier::Data,
        counts: [8, 6, 0],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Bastion,
        tier: Tier::Public,
        counts: [2, 1, 0],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Windows,
        tier: Tier::Mgmt,
        counts: [5, 4, 0],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Batch,
        tier: Tier::App,
        counts: [10, 15, 20],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Dns,
        tier: Tier::App,
        counts: [0, 0, 4],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Ntp,
        tier: Tier::App,
        counts: [0, 0, 2],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Ldap,
        tier: Tier::Data,
        counts: [0, 0, 4],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Monitor,
        tier: Tier::Mgmt,
        counts: [0, 0, 6],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Ci,
        tier: Tier::App,
        counts: [0, 0, 10],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Proxy,
        tier: Tier::Public,
        counts: [0, 0, 4],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Logging,
        tier: Tier::Data,
        counts: [0, 0, 4],
        service: None,
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Nat,
        tier: Tier::Public,
        counts: [0, 0, 2],
        service: Some("nat_gateway"),
        dual_stack: false,
    },
    RoleSpec {
        role: Role::Endpoint,
        tier: Tier::App,
        counts: [0, 0, 4],
        service: Some("vpc_endpoint"),
        dual_stack: false,
    },
];

/// Database ports, cycled over the database interfaces of a VPC (PostgreSQL twice as common).
const DB_PORTS: [u16; 4] = [5432, 5432, 3306, 6379];

pub(crate) struct Vpc {
    pub name: &'static str,
    pub account: &'static str,
    pub id: String,
    pub cidr: String,
    /// Groups 3 and 4 of the VPC's `2600:1f18::/32` /56 (group 4's low byte is the subnet's).
    pub ipv6_prefix: [u16; 2],
    /// The VPC's transit-gateway attachment, and its interface and subnet in each zone.
    pub attachment: String,
    pub attachment_enis: [String; 2],
    pub attachment_subnets: [String; 2],
    pub flow_log: String,
}

pub(crate) struct Subnet {
    pub id: String,
    pub az: usize,
}

/// The fields ECS fills for a task's interface (flow-log version 7).
pub(crate) struct Ecs {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub container_instance_arn: Option<String>,
    pub container_instance_id: Option<String>,
    pub container_id: String,
    pub second_container_id: Option<String>,
    pub service_name: String,
    pub task_definition_arn: String,
    pub task_arn: String,
    pub task_id: String,
}

/// Tag values the flow log was told to copy (flow-log version 11).
pub(crate) struct Tags {
    pub instance: String,
    pub instance_2: String,
    pub interface: String,
    pub asg: Option<String>,
}

pub(crate) struct Eni {
    pub id: String,
    pub instance: Option<String>,
    pub vpc: usize,
    pub subnet: usize,
    pub role: Role,
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    /// Secondary addresses handed to pods (EKS): packets carry these, `srcaddr`/`dstaddr` the
    /// primary address (format reference §3.2).
    pub pods: Vec<Ipv4Addr>,
    pub nitro: bool,
    pub db_port: u16,
    pub interface_type: Option<&'static str>,
    pub ecs: Option<Box<Ecs>>,
    pub tags: Option<Box<Tags>>,
}

impl Vpc {
    pub(crate) fn ipv6_cidr(&self) -> String {
        let [a, b] = self.ipv6_prefix;
        format!("2600:1f18:{a:x}:{b:x}::/56")
    }
}

impl Eni {
    pub(crate) fn primary(&self, v6: bool) -> IpAddr {
        match (v6, self.ipv6) {
            (true, Some(v6)) => IpAddr::V6(v6),
            _ => IpAddr::V4(self.ipv4),
        }
    }
}

/// Interfaces of one role in one VPC, busiest first.
pub(crate) struct Group {
    pub enis: Vec<u16>,
    zipf: Zipf,
}

impl Group {
    pub(crate) fn is_empty(&self) -> bool {
        self.enis.is_empty()
    }

    /// A talker: the first interfaces of the group are drawn far more often than the rest.
    pub(crate) fn pick(&self, rng: &mut Rng) -> u16 {
        self.enis[self.zipf.sample(rng)]
    }
}

pub(crate) struct Topology {
    pub vpcs: [Vpc; 3],
    pub subnets: Vec<Subnet>,
    pub enis: Vec<Eni>,
    groups: Vec<Group>,
    /// Every instance interface of each VPC (no load balancers, gateways or endpoints), in a
    /// seeded order, as clients of shared services and targets of monitoring.
    instances: [Group; 3],
    pub tgw_id: String,
    pub tgw_flow_log: String,
    pub peers: Vec<Ipv4Addr>,
    pub peer_zipf: Zipf,
    pub peers_v6: Vec<Ipv6Addr>,
    pub peer_v6_zipf: Zipf,
    /// Office egress addresses administrators connect from.
    pub admins: Vec<Ipv4Addr>,
}

const VPC_NAMES: [&str; 3] = ["prod", "dev", "shared"];
const ACCOUNTS: [&str; 3] = ["111122223333", "444455556666", "777788889999"];

fn id(rng: &mut Rng, prefix: &str) -> String {
    // New-style AWS ids have 17 hex digits, and in practice the first is 0.
    let mut s = String::with_capacity(prefix.len() + 17);
    s.push_str(prefix);
    s.push('0');
    rng.hex(16, &mut s);
    s
}

fn hex_id(rng: &mut Rng, digits: usize) -> String {
    let mut s = String::with_capacity(digits);
    while s.len() < digits {
        rng.hex((digits - s.len()).min(16), &mut s);
    }
    s
}

impl Topology {
    pub(crate) fn new(seed: u64) -> Topology {
        let mut rng = Rng::new(&[seed, 0x7070]);
        let tgw_id = id(&mut rng, "tgw-");
        let tgw_flow_log = id(&mut rng, "fl-");
        let mut subnets = Vec::new();
        // Subnet index by (vpc, tier, az).
        let mut subnet_of = [[[0usize; 2]; 4]; 3];
        let vpcs = [0, 1, 2].map(|v| {
            let v6_a = rng.below(0x1_0000) as u16;
            let v6_b = (rng.below(0x100) as u16) << 8;
            for tier in subnet_of[v].iter_mut() {
                for (az, slot) in tier.iter_mut().enumerate() {
                    *slot = subnets.len();
                    subnets.push(Subnet {
                        id: id(&mut rng, "subnet-"),
                        az,
                    });
                }
            }
            Vpc {
                name: VPC_NAMES[v],
                account: ACCOUNTS[v],
                id: id(&mut rng, "vpc-"),
                cidr: format!("10.{}.0.0/16", v + 1),
                ipv6_prefix: [v6_a, v6_b],
                attachment: id(&mut rng, "tgw-attach-"),
                attachment_enis: [id(&mut rng, "eni-"), id(&mut rng, "eni-")],
                attachment_subnets: [id(&mut rng, "subnet-"), id(&mut rng, "subnet-")],
                flow_log: id(&mut rng, "fl-"),
            }
        });
        // The attachment subnets' third octet is reserved for them.
        debug_assert!(TIERS.iter().all(|t| (*t as u8) + 1 < TGW_OCTET));

        let mut used: HashSet<Ipv4Addr> = HashSet::new();
        used.insert(EXFIL_HOST);
        let mut enis = Vec::new();
        let mut groups = Vec::new();
        for spec in ROLES {
            for (v, vpc) in vpcs.iter().enumerate() {
                let mut members = Vec::new();
                for k in 0..spec.counts[v] {
                    let tier = TIERS.iter().position(|t| *t == spec.tier).unwrap_or(0);
                    let is_exfil_host = v == PROD && spec.role == Role::App && k == 0;
                    let az = if is_exfil_host { 1 } else { rng.below(2) as usize };
                    let octet = spec.tier as u8 + az as u8;
                    let ipv4 = if is_exfil_host {
                        EXFIL_HOST
                    } else {
                        fresh_host(&mut rng, &mut used, v, octet)
                    };
                    let subnet = subnet_of[v][tier][az];
                    let ipv6 = spec.dual_stack.then(|| {
                        let [a, b] = vpc.ipv6_prefix;
                        let iid = rng.next_u64();
                        Ipv6Addr::new(
                            0x2600,
                            0x1f18,
                            a,
                            b | (tier * 2 + az) as u16,
                            (iid >> 48) as u16,
                            (iid >> 32) as u16,
                            (iid >> 16) as u16,
                            iid as u16,
                        )
                    });
                    let pods = if spec.role == Role::Eks {
                        (0..8).map(|_| fresh_host(&mut rng, &mut used, v, octet)).collect()
                    } else {
                        Vec::new()
                    };
                    let instance = spec.service.is_none().then(|| id(&mut rng, "i-"));
                    let tags = instance.as_ref().map(|_| {
                        let role = role_word(spec.role);
                        Box::new(Tags {
                            instance: format!("{}-{role}-{:02}", vpc.name, k + 1),
                            instance_2: vpc.name.to_owned(),
                            interface: role.to_owned(),
                            asg: matches!(spec.role, Role::Web | Role::App | Role::Eks | Role::Batch)
                                .then(|| format!("{}-{role}-asg", vpc.name)),
                        })
                    });
                    let ecs = (spec.role == Role::Ecs).then(|| Box::new(ecs_task(&mut rng, vpc, k)));
                    members.push(enis.len() as u16);
                    enis.push(Eni {
                        id: id(&mut rng, "eni-"),
                        instance,
                        vpc: v,
                        subnet,
                        role: spec.role,
                        ipv4,
                        ipv6,
                        pods,
                        // Most of the fleet is Nitro; the rest shows the older traffic-path codes.
                        nitro: rng.per_mille(850),
                        db_port: DB_PORTS[k % DB_PORTS.len()],
                        interface_type: spec.service,
                        ecs,
                        tags,
                    });
                }
                let zipf = Zipf::new(members.len().max(1), true);
                groups.push(Group { enis: members, zipf });
            }
        }

        let instances = [0, 1, 2].map(|v| {
            let mut members: Vec<u16> = (0..enis.len() as u16)
                .filter(|&e| enis[usize::from(e)].vpc == v && enis[usize::from(e)].instance.is_some())
                .collect();
            // Fisher-Yates, so the busiest clients are not all of the first role.
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let zipf = Zipf::new(members.len().max(1), true);
            Group { enis: members, zipf }
        });
        let peers = public_peers(&mut rng, PUBLIC_PEERS);
        let admins = public_peers(&mut rng, 3);
        let peers_v6 = (0..PUBLIC_PEERS_V6)
            .map(|_| {
                let r = rng.next_u64();
                let iid = rng.next_u64();
                Ipv6Addr::new(
                    0x2001,
                    0x0db8,
                    (r >> 48) as u16,
                    (r >> 32) as u16,
                    0,
                    0,
                    (iid >> 16) as u16,
                    iid as u16,
                )
            })
            .collect();
        Topology {
            vpcs,
            subnets,
            enis,
            groups,
            instances,
            tgw_id,
            tgw_flow_log,
            peer_zipf: Zipf::new(PUBLIC_PEERS, false),
            peers,
            peer_v6_zipf: Zipf::new(PUBLIC_PEERS_V6, false),
            peers_v6,
            admins,
        }
    }

    /// The interfaces of `role` in VPC `vpc`.
    pub(crate) fn group(&self, role: Role, vpc: usize) -> &Group {
        // `ROLES` lists the roles in declaration order (a test checks), and `new` made one group
        // per role and VPC in that order.
        &self.groups[role as usize * 3 + vpc]
    }

    /// The instance interfaces of VPC `vpc`.
    pub(crate) fn instances(&self, vpc: usize) -> &Group {
        &self.instances[vpc]
    }

    /// The VPC of interface `eni`, or the shared VPC for an internet address (transit-gateway
    /// corpora route the internet through the shared VPC).
    pub(crate) fn side_vpc(&self, eni: u16) -> usize {
        if eni == EXTERNAL {
            SHARED
        } else {
            self.enis[usize::from(eni)].vpc
        }
    }

    pub(crate) fn peer(&self, rng: &mut Rng) -> Ipv4Addr {
        self.peers[self.peer_zipf.sample(rng)]
    }

    pub(crate) fn peer_v6(&self, rng: &mut Rng) -> Ipv6Addr {
        self.peers_v6[self.peer_v6_zipf.sample(rng)]
    }
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Lb => "nlb",
        Role::Web => "web",
        Role::App => "app",
        Role::Ecs => "ecs",
        Role::Eks => "eks-node",
        Role::Db => "db",
        Role::Bastion => "bastion",
        Role::Windows => "win",
        Role::Batch => "batch",
        Role::Dns => "dns",
        Role::Ntp => "ntp",
        Role::Ldap => "dc",
        Role::Monitor => "monitor",
        Role::Ci => "ci-runner",
        Role::Proxy => "proxy",
        Role::Logging => "syslog",
        Role::Nat => "nat",
        Role::Endpoint => "endpoint",
    }
}

fn ecs_task(rng: &mut Rng, vpc: &Vpc, k: usize) -> Ecs {
    let cluster_name = format!("{}-cluster", vpc.name);
    let arn = |kind: &str| format!("arn:aws:ecs:{REGION}:{}:{kind}", vpc.account);
    let service_name = format!("{}-svc-{}", vpc.name, k % 4 + 1);
    let task_id = hex_id(rng, 32);
    // Half the tasks run on EC2 capacity, which names a container instance; Fargate does not.
    let on_ec2 = k.is_multiple_of(2);
    let container_instance_id = on_ec2.then(|| hex_id(rng, 32));
    Ecs {
        cluster_arn: arn(&format!("cluster/{cluster_name}")),
        container_instance_arn: container_instance_id
            .as_ref()
            .map(|ci| arn(&format!("container-instance/{cluster_name}/{ci}"))),
        container_instance_id,
        container_id: hex_id(rng, 64),
        second_container_id: k.is_multiple_of(3).then(|| hex_id(rng, 64)),
        task_definition_arn: arn(&format!("task-definition/{service_name}:{}", k % 7 + 3)),
        task_arn: arn(&format!("task/{cluster_name}/{task_id}")),
        task_id,
        service_name,
        cluster_name,
    }
}

/// An unused host address in `10.{vpc+1}.{octet}.0/24`, avoiding the addresses AWS reserves
/// (network, router, DNS, future use, broadcast).
fn fresh_host(rng: &mut Rng, used: &mut HashSet<Ipv4Addr>, vpc: usize, octet: u8) -> Ipv4Addr {
    loop {
        let ip = Ipv4Addr::new(10, vpc as u8 + 1, octet, rng.range(4, 254) as u8);
        if used.insert(ip) {
            return ip;
        }
    }
}

/// `n` distinct public unicast IPv4 addresses, none in private, reserved or documentation
/// ranges (the incidents own 198.51.100.0/24 and 203.0.113.0/24, so no background flow can look
/// like one).
fn public_peers(rng: &mut Rng, n: usize) -> Vec<Ipv4Addr> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let ip = Ipv4Addr::from(rng.next_u64() as u32);
        if is_public(ip) && seen.insert(ip) {
            out.push(ip);
        }
    }
    out
}

fn is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113))
}

/// The AWS IP-range subset an address belongs to (`pkt-src-aws-service`), for a few us-east-1
/// prefixes of the published ranges.
pub(crate) fn aws_service(ip: IpAddr) -> Option<&'static str> {
    let IpAddr::V4(v4) = ip else { return None };
    let n = u32::from(v4);
    let within = |base: [u8; 4], len: u32| (n ^ u32::from(Ipv4Addr::from(base))) >> (32 - len) == 0;
    if within([52, 216, 0, 0], 15) {
        Some("S3")
    } else if within([3, 218, 180, 0], 22) {
        Some("DYNAMODB")
    } else if within([54, 144, 0, 0], 12) || within([3, 80, 0, 0], 12) {
        Some("EC2")
    } else {
        None
    }
}

/// A random address in one of the AWS-service prefixes above: S3 or DynamoDB.
pub(crate) fn aws_service_address(rng: &mut Rng) -> Ipv4Addr {
    if rng.per_mille(800) {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(52, 216, 0, 0)) + rng.below(1 << 17) as u32)
    } else {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(3, 218, 180, 0)) + rng.below(1 << 10) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_has_the_promised_shape() {
        let t = Topology::new(1);
        assert_eq!(t.enis.len(), 220);
        for (v, want) in [(PROD, 90), (DEV, 70), (SHARED, 60)] {
            assert_eq!(t.enis.iter().filter(|e| e.vpc == v).count(), want);
        }
        assert_eq!(t.enis.iter().filter(|e| e.ipv4 == EXFIL_HOST).count(), 1);
        let ips: HashSet<Ipv4Addr> = t
            .enis
            .iter()
            .flat_map(|e| std::iter::once(e.ipv4).chain(e.pods.iter().copied()))
            .collect();
        let total: usize = t.enis.iter().map(|e| 1 + e.pods.len()).sum();
        assert_eq!(ips.len(), total, "addresses are unique");
        assert!(t.enis.iter().all(|e| e.id.len() == 21 && e.id.starts_with("eni-0")));
        assert!(t.peers.iter().all(|p| is_public(*p)));
        assert!(ROLES.iter().enumerate().all(|(i, s)| s.role as usize == i));
        assert!(t
            .group(Role::Db, PROD)
            .enis
            .iter()
            .all(|&e| t.enis[usize::from(e)].role == Role::Db));
        assert!(t.group(Role::Dns, SHARED).enis.len() == 4);
    }

    #[test]
    fn service_prefixes() {
        assert_eq!(aws_service("52.217.1.2".parse().unwrap()), Some("S3"));
        assert_eq!(aws_service("3.218.183.255".parse().unwrap()), Some("DYNAMODB"));
        assert_eq!(aws_service("3.218.184.0".parse().unwrap()), None);
        assert_eq!(aws_service("198.51.100.7".parse().unwrap()), None);
        assert!(!is_public("198.51.100.7".parse().unwrap()));
        assert!(!is_public("203.0.113.9".parse().unwrap()));
    }
}
