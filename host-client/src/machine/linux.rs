//! The native probe on Linux: the machine's identifiers, whether they can be trusted where the
//! client runs, and the times the machine keeps.
//!
//! Network adapters come from the kernel over netlink (`RTM_GETLINK`), not from files. The machine
//! id is a file and the disk serial a sysfs attribute, so every identity file read is checked to
//! be the machine's own: not the root of a mount (`statx`'s `STATX_ATTR_MOUNT_ROOT`, or a mount id
//! other than its directory's), not under a bind mount of another directory or a `tmpfs`, and for
//! sysfs on the machine's sysfs mount; `/proc/self/mountinfo` is read for mounts over the sysfs
//! trees of devices too. Namespaces other than the machine's (mount, network and user) are found
//! through `/proc/self/uid_map` and by comparing `/proc/self/ns/*` with the init process's, which
//! only root can read.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{ClockFloor, Environment, MachineClock};

const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
/// Where sysfs keeps what identifies devices; nothing is ever mounted inside these on a real
/// machine.
const SYSFS_DEVICE_TREES: [&str; 5] = [
    "/sys/block",
    "/sys/bus",
    "/sys/class",
    "/sys/dev",
    "/sys/devices",
];
/// Files the system maintains whose modification times the clock must not be behind.
const SYSTEM_FILES: [&str; 4] = [
    "/var/lib/dpkg/status",
    "/var/log/wtmp",
    "/etc/adjtime",
    "/var/lib/systemd/timesync/clock",
];
const SYSFS_MAGIC: u64 = 0x6265_6572;
const TMPFS_MAGIC: u64 = 0x0102_1994;
const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// How far below the kernel's wall clock its floor is kept: the boot time is in whole seconds.
const KERNEL_CLOCK_MARGIN_SECONDS: i64 = 2;

fn read_trimmed(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The raw components, by policy name.
pub(super) fn components() -> BTreeMap<&'static str, String> {
    let mut raw = BTreeMap::new();
    if let Some((id, _)) = machine_id() {
        raw.insert("machine-id", id);
    }
    if let Some(macs) = netlink::physical_macs() {
        raw.insert("mac", macs);
    }
    if let Some(cpu) = cpu_model() {
        raw.insert("cpu", cpu);
    }
    if let Some((serial, _)) = disk_serial() {
        raw.insert("disk", serial);
    }
    raw
}

/// The machine id and the file it was read from.
fn machine_id() -> Option<(String, PathBuf)> {
    MACHINE_ID_FILES.iter().find_map(|path| {
        let path = Path::new(path);
        read_trimmed(path).map(|id| (id, path.to_path_buf()))
    })
}

fn cpu_model() -> Option<String> {
    let file = fs::File::open("/proc/cpuinfo").ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let key = key.trim();
            let wanted = matches!(key, "model name" | "Hardware" | "cpu model" | "Model");
            let value = value.trim();
            (wanted && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The serial of the first (by name) whole disk that reports one, and the sysfs file it came from:
/// `serial` (virtio), `device/serial` (NVMe) or the kernel's copy of the disk's SCSI INQUIRY
/// page 0x80 (`device/vpd_pg80`: SCSI and SATA disks).
fn disk_serial() -> Option<(String, PathBuf)> {
    let mut disks: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            !["loop", "ram", "zram", "dm-", "sr", "md", "nbd"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })
        .collect();
    disks.sort();
    disks.iter().find_map(|disk| {
        let base = Path::new("/sys/block").join(disk);
        ["serial", "device/serial"]
            .iter()
            .find_map(|name| {
                let path = base.join(name);
                read_trimmed(&path).map(|serial| (serial, path))
            })
            .or_else(|| {
                let path = base.join("device/vpd_pg80");
                let page = fs::read(&path).ok()?;
                vpd_unit_serial(&page).map(|serial| (serial, path))
            })
    })
}

/// The unit serial number of an INQUIRY VPD page 0x80: page code at byte 1, length at byte 3.
fn vpd_unit_serial(page: &[u8]) -> Option<String> {
    if page.get(1) != Some(&0x80) {
        return None;
    }
    let length = usize::from(*page.get(3)?);
    let serial = page.get(4..4 + length)?;
    let serial = String::from_utf8_lossy(serial).trim().to_owned();
    (!serial.is_empty()).then_some(serial)
}

/// What makes the machine's identity untrustworthy here.
pub(super) fn environment() -> Environment {
    let mut findings = Vec::new();
    if fs_magic(Path::new("/proc")) != Some(u64::from(PROC_SUPER_MAGIC)) {
        findings.push("`/proc` is not the kernel's proc file system".to_owned());
    }
    if let Some(map) = read_trimmed(Path::new("/proc/self/uid_map")) {
        let map: Vec<&str> = map.split_whitespace().collect();
        if map != ["0", "0", "4294967295"] {
            findings.push(format!(
                "the client runs in a user namespace (user ids mapped as `{}`)",
                map.join(" ")
            ));
        }
    }
    for (namespace, what) in [("mnt", "mount"), ("net", "network"), ("user", "user")] {
        // Only root may read the init process's namespaces; when they cannot be read there is
        // nothing to compare.
        let own = fs::metadata(format!("/proc/self/ns/{namespace}"));
        let init = fs::metadata(format!("/proc/1/ns/{namespace}"));
        if let (Ok(own), Ok(init)) = (own, init) {
            if (own.dev(), own.ino()) != (init.dev(), init.ino()) {
                findings.push(format!(
                    "the client runs in another {what} namespace than the machine's"
                ));
            }
        }
    }
    let mounts = mountinfo();
    let mut identity_files: Vec<PathBuf> = MACHINE_ID_FILES.iter().map(PathBuf::from).collect();
    identity_files.extend(disk_serial().map(|(_, path)| path));
    for file in &identity_files {
        check_identity_file(file, &mounts, &mut findings);
    }
    for mount in &mounts {
        if SYSFS_DEVICE_TREES
            .iter()
            .any(|tree| mount.point.starts_with(tree))
        {
            findings.push(format!(
                "`{}` is mounted over the kernel's device tree",
                mount.point.display()
            ));
        }
    }
    findings.dedup();
    Environment { findings }
}

const PROC_SUPER_MAGIC: u32 = 0x9fa0;

fn fs_magic(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statfs(path).ok()?;
    u64::try_from(stat.f_type).ok()
}

/// Findings about one identity file: a mount laid over the file itself, or over a directory it
/// is in (a bind mount of another directory, or a memory file system).
fn check_identity_file(file: &Path, mounts: &[Mount], findings: &mut Vec<String>) {
    let Ok(real) = fs::canonicalize(file) else {
        return;
    };
    if is_mount_root(&real) || mounts.iter().any(|m| m.point == real || m.point == file) {
        findings.push(format!(
            "`{}` is a mount point: another file is laid over the machine's own",
            file.display()
        ));
    }
    for mount in mounts {
        let over_directory =
            mount.point != Path::new("/") && mount.point != real && real.starts_with(&mount.point);
        if over_directory && (mount.root != Path::new("/") || is_memory_fs(&mount.fs_type)) {
            findings.push(format!(
                "`{}` is under `{}`, a {} mount over the machine's own directory",
                file.display(),
                mount.point.display(),
                if mount.root != Path::new("/") {
                    "bind"
                } else {
                    mount.fs_type.as_str()
                }
            ));
        }
    }
    if real.starts_with("/sys") {
        check_on_sysfs(&real, findings);
    } else if matches!(fs_magic(&real), Some(TMPFS_MAGIC | RAMFS_MAGIC)) {
        findings.push(format!(
            "`{}` is on a memory file system, not the machine's disk",
            file.display()
        ));
    }
}

fn is_memory_fs(fs_type: &str) -> bool {
    matches!(fs_type, "tmpfs" | "ramfs")
}

/// Whether `path` is the root of a mount: `STATX_ATTR_MOUNT_ROOT` when the kernel reports it,
/// else a mount id other than its directory's.
fn is_mount_root(path: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    let Ok(stat) = statx(CWD, path, AtFlags::empty(), StatxFlags::MNT_ID) else {
        return false;
    };
    if stat
        .stx_attributes_mask
        .contains(StatxAttributes::MOUNT_ROOT)
    {
        return stat.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
    }
    let has_mount_id = |stat: &rustix::fs::Statx| stat.stx_mask & StatxFlags::MNT_ID.bits() != 0;
    let Some(parent) = path.parent() else {
        return false;
    };
    match statx(CWD, parent, AtFlags::empty(), StatxFlags::MNT_ID) {
        Ok(up) if has_mount_id(&stat) && has_mount_id(&up) => stat.stx_mnt_id != up.stx_mnt_id,
        _ => false,
    }
}

/// A sysfs identity file must be on sysfs, and on the same mount as `/sys`.
fn check_on_sysfs(path: &Path, findings: &mut Vec<String>) {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    if fs_magic(path).is_some_and(|magic| magic != SYSFS_MAGIC) {
        findings.push(format!("`{}` is not on the kernel's sysfs", path.display()));
        return;
    }
    let mount_id = |path: &Path| {
        statx(CWD, path, AtFlags::empty(), StatxFlags::MNT_ID)
            .ok()
            .filter(|stat| stat.stx_mask & StatxFlags::MNT_ID.bits() != 0)
            .map(|stat| stat.stx_mnt_id)
    };
    if let (Some(file), Some(sys)) = (mount_id(path), mount_id(Path::new("/sys"))) {
        if file != sys {
            findings.push(format!(
                "`{}` is not on the machine's sysfs mount",
                path.display()
            ));
        }
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug)]
struct Mount {
    /// The directory of the source file system mounted (`/` unless a part of it is bound).
    root: PathBuf,
    /// Where it is mounted.
    point: PathBuf,
    fs_type: String,
}

fn mountinfo() -> Vec<Mount> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines().filter_map(parse_mount).collect()
}

fn parse_mount(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let root = fields.nth(3)?;
    let point = fields.next()?;
    let fs_type = after.split(' ').next()?;
    Some(Mount {
        root: PathBuf::from(unescape(root)),
        point: PathBuf::from(unescape(point)),
        fs_type: fs_type.to_owned(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes
            .get(index + 1..index + 4)
            .filter(|digits| {
                bytes[index] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d))
            })
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The boot id, the uptime, the kernel's wall clock and the system files' times.
pub(super) fn clock() -> MachineClock {
    let boot_id = read_trimmed(Path::new("/proc/sys/kernel/random/boot_id"));
    let uptime = read_trimmed(Path::new("/proc/uptime"))
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .and_then(|seconds| std::time::Duration::try_from_secs_f64(seconds).ok());
    let mut floors = Vec::new();
    if let (Some(boot), Some(uptime)) = (boot_time(), uptime) {
        let kernel_now = chrono::Duration::from_std(uptime)
            .ok()
            .and_then(|uptime| boot.checked_add_signed(uptime))
            .and_then(|now| {
                now.checked_sub_signed(chrono::Duration::seconds(KERNEL_CLOCK_MARGIN_SECONDS))
            });
        if let Some(at) = kernel_now {
            floors.push(ClockFloor {
                source: "the kernel's clock".to_owned(),
                at,
            });
        }
    }
    for path in SYSTEM_FILES {
        if let Ok(at) = fs::metadata(path).and_then(|metadata| metadata.modified()) {
            floors.push(ClockFloor {
                source: format!("`{path}`"),
                at: DateTime::<Utc>::from(at),
            });
        }
    }
    MachineClock {
        boot_id,
        uptime,
        floors,
    }
}

/// The wall-clock time of the boot (`btime` of `/proc/stat`).
fn boot_time() -> Option<DateTime<Utc>> {
    let file = fs::File::open("/proc/stat").ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let seconds = line.strip_prefix("btime ")?.trim().parse::<i64>().ok()?;
            DateTime::from_timestamp(seconds, 0)
        })
}

mod netlink {
    //! Network adapters from the kernel's routing netlink (`RTM_GETLINK`).

    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
    };
    use netlink_packet_route::link::{LinkAttribute, LinkInfo, LinkLayerType, LinkMessage};
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_sys::protocols::NETLINK_ROUTE;
    use netlink_sys::{Socket, SocketAddr};

    /// The most datagrams of one dump read before giving up.
    const MAX_DATAGRAMS: usize = 256;

    /// The sorted, distinct permanent MAC addresses of the machine's physical Ethernet-type
    /// adapters, comma-separated.
    pub(super) fn physical_macs() -> Option<String> {
        let mut macs = dump_links()?
            .iter()
            .filter_map(physical_mac)
            .collect::<Vec<_>>();
        macs.sort();
        macs.dedup();
        (!macs.is_empty()).then(|| macs.join(","))
    }

    fn dump_links() -> Option<Vec<LinkMessage>> {
        let mut socket = Socket::new(NETLINK_ROUTE).ok()?;
        socket.bind_auto().ok()?;
        socket.connect(&SocketAddr::new(0, 0)).ok()?;
        let mut request = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
        );
        request.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
        request.header.sequence_number = 1;
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        socket.send(&bytes, 0).ok()?;
        let mut links = Vec::new();
        let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
        for _ in 0..MAX_DATAGRAMS {
            buffer.clear();
            socket.recv(&mut buffer, 0).ok()?;
            let mut offset = 0;
            while offset < buffer.len() {
                let message =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(buffer.get(offset..)?)
                        .ok()?;
                match message.payload {
                    NetlinkPayload::Done(_) => return Some(links),
                    NetlinkPayload::Error(_) => return None,
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                        links.push(link);
                    }
                    _ => {}
                }
                let length = usize::try_from(message.header.length).ok()?;
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
            }
        }
        None
    }

    /// The adapter's permanent address (else its current one) when it is a physical
    /// Ethernet-type adapter: no link kind (bridges, veth, tunnels, bonds, dummies have one).
    fn physical_mac(link: &LinkMessage) -> Option<String> {
        if link.header.link_layer_type != LinkLayerType::Ether {
            return None;
        }
        let virtual_link = link.attributes.iter().any(|attribute| {
            matches!(attribute, LinkAttribute::LinkInfo(infos)
                if infos.iter().any(|info| matches!(info, LinkInfo::Kind(_))))
        });
        if virtual_link {
            return None;
        }
        let address = |want_permanent: bool| {
            link.attributes
                .iter()
                .find_map(|attribute| match attribute {
                    LinkAttribute::PermAddress(bytes) if want_permanent => Some(bytes),
                    LinkAttribute::Address(bytes) if !want_permanent => Some(bytes),
                    _ => None,
                })
        };
        let usable = |bytes: &&Vec<u8>| bytes.len() == 6 && bytes.iter().any(|&byte| byte != 0);
        let bytes = address(true)
            .filter(usable)
            .or_else(|| address(false).filter(usable))?;
        Some(
            bytes
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mountinfo_lines_are_read_with_their_escapes() {
        let bind = parse_mount(
            "36 27 254:0 /tmp/fake\\040id /etc/machine-id rw,relatime shared:1 - ext4 /dev/vda rw",
        )
        .unwrap();
        assert_eq!(bind.root, Path::new("/tmp/fake id"));
        assert_eq!(bind.point, Path::new("/etc/machine-id"));
        assert_eq!(bind.fs_type, "ext4");
        assert!(parse_mount("garbage").is_none());
    }

    #[test]
    fn a_vpd_page_gives_its_unit_serial() {
        let mut page = vec![0x00, 0x80, 0x00, 0x0a];
        page.extend_from_slice(b"  WD-12345");
        assert_eq!(vpd_unit_serial(&page).as_deref(), Some("WD-12345"));
        assert_eq!(vpd_unit_serial(&[0x00, 0x83, 0x00, 0x01, b'x']), None);
        assert_eq!(vpd_unit_serial(&[0x00, 0x80, 0x00, 0x09, b'x']), None);
    }

    #[test]
    fn the_kernel_lists_this_machines_adapters_without_files() {
        // The same adapters sysfs shows with a device behind them.
        let from_sysfs: Vec<String> = fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .filter(|entry| entry.path().join("device").exists())
            .filter_map(|entry| fs::read_to_string(entry.path().join("address")).ok())
            .map(|mac| mac.trim().to_ascii_lowercase())
            .filter(|mac| mac.chars().any(|c| c != '0' && c != ':'))
            .collect();
        let macs = netlink::physical_macs();
        if from_sysfs.is_empty() {
            return;
        }
        let macs = macs.unwrap();
        for mac in &from_sysfs {
            assert!(macs.contains(mac.as_str()), "{mac} not in {macs}");
        }
    }

    #[test]
    fn this_machine_is_a_trusted_environment_unless_it_is_a_namespace() {
        let environment = environment();
        let namespaced = read_trimmed(Path::new("/proc/self/uid_map")).is_some_and(|map| {
            map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
        });
        if !namespaced {
            assert!(environment.is_trusted(), "{environment:?}");
        }
    }
}
