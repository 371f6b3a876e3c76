//! Where the upgrade finds the current task's network namespace: the byte offsets of
//! `task_struct.nsproxy`, `nsproxy.net_ns` and `net.net_cookie`, read from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) before the program is loaded, never guessed. aya's BTF parser
//! keeps struct members private, so this reads the type section itself (only what it needs:
//! struct members, through anonymous structs and unions).

use std::fs;

use mptcpd_common::upgrade::NetnsConfig;

use crate::EbpfError;

/// The running kernel's BTF.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// The offsets for the running kernel, `ready`; an error naming what BTF lacks.
pub(super) fn for_running_kernel() -> Result<NetnsConfig, EbpfError> {
    let btf = fs::read(VMLINUX_BTF).map_err(|e| EbpfError::KernelLayout {
        why: format!("{VMLINUX_BTF}: {e}"),
    })?;
    netns_config(&btf).map_err(|why| EbpfError::KernelLayout { why })
}

/// Byte offsets of `(struct, field, size in bytes)` in the running kernel (for telemetry);
/// what BTF lacks, as one line.
pub(crate) fn running_kernel_fields<const N: usize>(
    fields: [(&str, &str, u32); N],
) -> Result<[u64; N], String> {
    let data = fs::read(VMLINUX_BTF).map_err(|e| format!("{VMLINUX_BTF}: {e}"))?;
    let btf = Btf::parse(&data)?;
    let mut offsets = [0; N];
    for (offset, (name, field, size)) in offsets.iter_mut().zip(fields) {
        *offset = btf.field_offset(name, field, size)?;
    }
    Ok(offsets)
}

/// The offsets in the BTF `data`.
fn netns_config(data: &[u8]) -> Result<NetnsConfig, String> {
    let btf = Btf::parse(data)?;
    Ok(NetnsConfig {
        ready: 1,
        task_nsproxy: btf.field_offset("task_struct", "nsproxy", 8)?,
        nsproxy_net_ns: btf.field_offset("nsproxy", "net_ns", 8)?,
        net_cookie: btf.field_offset("net", "net_cookie", 8)?,
        not_allowed: 0,
    })
}

/// One BTF type: its name, `info` word, size-or-type word, and the bytes that follow it.
struct Type<'a> {
    name: u32,
    info: u32,
    size_or_id: u32,
    extra: &'a [u8],
}

impl Type<'_> {
    const fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }

    const fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    const fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
}

struct Btf<'a> {
    /// Index = type id - 1 (id 0 is `void`).
    types: Vec<Type<'a>>,
    strings: &'a [u8],
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, String> {
    data.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format!("truncated at byte {at}"))
}

fn usize_at(data: &[u8], at: usize) -> Result<usize, String> {
    usize::try_from(u32_at(data, at)?).map_err(|e| e.to_string())
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, String> {
        if data.get(..2) != Some(&MAGIC.to_le_bytes()[..]) {
            return Err("not little-endian BTF".to_owned());
        }
        let header = usize_at(data, 4)?.max(HEADER_LEN);
        let section = |off: usize, len: usize| {
            let (start, len) = (header + usize_at(data, off)?, usize_at(data, len)?);
            data.get(start..start + len)
                .ok_or_else(|| "a section lies outside the data".to_owned())
        };
        let (type_data, strings) = (section(8, 12)?, section(16, 20)?);
        let mut types = Vec::new();
        let mut at = 0;
        while at < type_data.len() {
            let (name, info, size_or_id) = (
                u32_at(type_data, at)?,
                u32_at(type_data, at + 4)?,
                u32_at(type_data, at + 8)?,
            );
            let mut ty = Type {
                name,
                info,
                size_or_id,
                extra: &[],
            };
            let extra = match ty.kind() {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * ty.vlen(),
                KIND_ENUM | KIND_FUNC_PROTO => 8 * ty.vlen(),
                _ => 0,
            };
            at += 12;
            ty.extra = type_data
                .get(at..at + extra)
                .ok_or_else(|| format!("type {} is truncated", types.len() + 1))?;
            at += extra;
            types.push(ty);
        }
        Ok(Self { types, strings })
    }

    fn name(&self, offset: u32) -> &'a [u8] {
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|o| self.strings.get(o..))
            .unwrap_or_default();
        rest.split(|b| *b == 0).next().unwrap_or_default()
    }

    fn by_id(&self, id: u32) -> Option<&Type<'a>> {
        self.types.get(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    /// Byte offset of `field` in `struct name` (in an anonymous member or not), checked to be
    /// `size` bytes and byte-aligned.
    fn field_offset(&self, name: &str, field: &str, size: u32) -> Result<u64, String> {
        let ty = self
            .types
            .iter()
            .find(|t| t.kind() == KIND_STRUCT && self.name(t.name) == name.as_bytes())
            .ok_or_else(|| format!("no struct {name}"))?;
        let (bits, member_type) = self
            .member(ty, field.as_bytes(), 0)
            .ok_or_else(|| format!("no member {field} in struct {name}"))?;
        if bits % 8 != 0 || self.size(member_type, 0) != Some(size) {
            return Err(format!(
                "{name}.{field} is not a {size}-byte field at a byte offset"
            ));
        }
        Ok(bits / 8)
    }

    /// Bit offset and type of `field` among the members of `ty`, looking into anonymous
    /// members; `depth` bounds the recursion on malformed data.
    fn member(&self, ty: &Type<'a>, field: &[u8], depth: u32) -> Option<(u64, u32)> {
        if depth > 8 || !matches!(ty.kind(), KIND_STRUCT | KIND_UNION) {
            return None;
        }
        for member in ty.extra.as_chunks::<12>().0 {
            let (name, member_type, offset) = (
                u32_at(member, 0).ok()?,
                u32_at(member, 4).ok()?,
                u32_at(member, 8).ok()?,
            );
            // With kind_flag, the high byte is a bitfield size.
            let bits = u64::from(if ty.kind_flag() {
                offset & 0x00ff_ffff
            } else {
                offset
            });
            if self.name(name) == field {
                return Some((bits, member_type));
            }
            if name == 0
                && let Some(inner) = self.by_id(member_type)
                && let Some((at, found)) = self.member(inner, field, depth + 1)
            {
                return Some((bits + at, found));
            }
        }
        None
    }

    /// Size in bytes of type `id`, through typedefs and qualifiers.
    fn size(&self, id: u32, depth: u32) -> Option<u32> {
        let ty = self.by_id(id)?;
        match ty.kind() {
            KIND_PTR => Some(8),
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 => Some(ty.size_or_id),
            // `{ element type, index type, count }`.
            KIND_ARRAY if depth < 16 => self
                .size(u32_at(ty.extra, 0).ok()?, depth + 1)?
                .checked_mul(u32_at(ty.extra, 8).ok()?),
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                if depth < 16 =>
            {
                self.size(ty.size_or_id, depth + 1)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KIND_INT, KIND_PTR, KIND_STRUCT, KIND_TYPEDEF, KIND_UNION, MAGIC, netns_config};

    /// A BTF blob: `types` as (name, kind, vlen, size or type id, extra words).
    fn btf(names: &[&str], types: &[(u32, u32, u32, u32, Vec<u32>)]) -> Vec<u8> {
        let mut strings = vec![0_u8];
        for name in names {
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
        }
        let mut type_data = Vec::new();
        for (name, kind, vlen, size, extra) in types {
            for word in [*name, kind << 24 | vlen, *size].iter().chain(extra) {
                type_data.extend_from_slice(&word.to_le_bytes());
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        let type_len = u32::try_from(type_data.len()).unwrap();
        let str_len = u32::try_from(strings.len()).unwrap();
        for word in [24, 0, type_len, type_len, str_len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&type_data);
        out.extend_from_slice(&strings);
        out
    }

    /// Offset of `name` in the string table of [`btf`].
    fn at(names: &[&str], name: &str) -> u32 {
        let i = names.iter().position(|n| *n == name).unwrap();
        1 + names[..i]
            .iter()
            .map(|n| u32::try_from(n.len()).unwrap() + 1)
            .sum::<u32>()
    }

    const NAMES: &[&str] = &[
        "u64",
        "task_struct",
        "nsproxy",
        "net_ns",
        "net",
        "net_cookie",
        "pid",
        "__u64",
    ];

    /// Types: 1 `u64` int, 2 ptr, 3 typedef `__u64` -> 1, 4 anonymous `union { nsproxy }`, 5
    /// `task_struct { pid @ 0, <anonymous union> @ 128 }`, 6 `nsproxy { net_ns @ 40 }`, 7
    /// `net { net_cookie @ 3072 }` (or `cookie_member` there); offsets in bytes.
    fn kernel(cookie_member: &str) -> Vec<u8> {
        let n = |s| at(NAMES, s);
        btf(
            NAMES,
            &[
                (n("u64"), KIND_INT, 0, 8, vec![64]),
                (0, KIND_PTR, 0, 1, vec![]),
                (n("__u64"), KIND_TYPEDEF, 0, 1, vec![]),
                (0, KIND_UNION, 1, 8, vec![n("nsproxy"), 2, 0]),
                (
                    n("task_struct"),
                    KIND_STRUCT,
                    2,
                    4096,
                    vec![n("pid"), 1, 0, 0, 4, 128 * 8],
                ),
                (
                    n("nsproxy"),
                    KIND_STRUCT,
                    1,
                    64,
                    vec![n("net_ns"), 2, 40 * 8],
                ),
                (
                    n("net"),
                    KIND_STRUCT,
                    1,
                    4096,
                    vec![at(NAMES, cookie_member), 3, 3072 * 8],
                ),
            ],
        )
    }

    #[test]
    fn offsets_are_found_through_anonymous_members_and_typedefs() {
        let config = netns_config(&kernel("net_cookie")).unwrap();
        assert_eq!(config.ready, 1);
        assert_eq!(config.task_nsproxy, 128);
        assert_eq!(config.nsproxy_net_ns, 40);
        assert_eq!(config.net_cookie, 3072);
    }

    #[test]
    fn a_missing_field_is_an_error_naming_it() {
        let err = netns_config(&kernel("pid")).unwrap_err();
        assert_eq!(err, "no member net_cookie in struct net");
        assert!(netns_config(b"not btf").is_err());
        let mut truncated = kernel("net_cookie");
        truncated.truncate(60);
        assert!(netns_config(&truncated).is_err());
    }

    #[test]
    fn the_running_kernel_has_the_fields() {
        if !std::path::Path::new(super::VMLINUX_BTF).exists() {
            mptcpd_test_skip::skip("the_running_kernel_has_the_fields", "no kernel BTF");
            return;
        }
        let config = super::for_running_kernel().unwrap();
        assert_eq!(config.ready, 1);
        // Nothing else is known for sure: the fields are not at the start of their structs.
        assert!(config.task_nsproxy > 0 && config.nsproxy_net_ns > 0 && config.net_cookie > 0);
    }
}
