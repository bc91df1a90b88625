//! Replies captured from a real Redis 7.0.15 cluster (127.0.0.1, ports
//! 31001-31006, three primaries with one replica each), byte for byte.

/// `CLUSTER SHARDS`, RESP2, right after `redis-cli --cluster create`: three primaries
/// (31001-31003), each with a replica (31004-31006) still `loading` (replication offset 0).
pub(crate) const SHARDS_RESP2: &[u8] =
    b"*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n\
    id\r\n$40\r\n0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n$4\r\nport\r\n:31001\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    *14\r\n$2\r\nid\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n$4\r\nport\r\n\
    :31004\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\n\
    loading\r\n*4\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n\
    *14\r\n$2\r\nid\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n$4\r\nport\r\n\
    :31003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n*14\r\n$2\r\nid\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n\
    $4\r\nport\r\n:31006\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n\
    127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:0\r\n\
    $6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n\
    $5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n\
    32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n$4\r\nport\r\n:31002\r\n$2\r\nip\r\n\
    $9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n\
    $2\r\nid\r\n$40\r\ne908974a33109902f291f6cae103891827e6474e\r\n$4\r\nport\r\n\
    :31005\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\n\
    loading\r\n";

/// `CLUSTER SHARDS`, RESP3 (maps), moments later: the replicas are `online`.
pub(crate) const SHARDS_RESP3: &[u8] =
    b"*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n%7\r\n$2\r\n\
    id\r\n$40\r\n0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n$4\r\nport\r\n:31001\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    %7\r\n$2\r\nid\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n$4\r\nport\r\n\
    :31004\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%2\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n%7\r\n\
    $2\r\nid\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n$4\r\nport\r\n\
    :31003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%7\r\n$2\r\nid\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n\
    $4\r\nport\r\n:31006\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n\
    127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:14\r\n\
    $6\r\nhealth\r\n$6\r\nonline\r\n%2\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\n\
    nodes\r\n*2\r\n%7\r\n$2\r\nid\r\n$40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n\
    $4\r\nport\r\n:31002\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n\
    127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\n\
    health\r\n$6\r\nonline\r\n%7\r\n$2\r\nid\r\n$40\r\n\
    e908974a33109902f291f6cae103891827e6474e\r\n$4\r\nport\r\n:31005\r\n$2\r\nip\r\n\
    $9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n\
    replica\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

/// `CLUSTER SLOTS`, RESP2, between the two: only 31004 is listed as a replica (the server leaves
/// out replicas that have not synced).
pub(crate) const SLOTS_RESP2: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:31001\r\n$40\r\n\
    0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n\
    :31004\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n*0\r\n*3\r\n:5461\r\n\
    :10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:31002\r\n$40\r\n\
    32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n*0\r\n*3\r\n:10923\r\n:16383\r\n*4\r\n\
    $9\r\n127.0.0.1\r\n:31003\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n\
    *0\r\n";

/// `CLUSTER SLOTS`, RESP3, all replicas synced.
pub(crate) const SLOTS_RESP3: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:31001\r\n$40\r\n\
    0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n%0\r\n*4\r\n$9\r\n127.0.0.1\r\n\
    :31004\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n%0\r\n*4\r\n:5461\r\n\
    :10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:31002\r\n$40\r\n\
    32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n%0\r\n*4\r\n$9\r\n127.0.0.1\r\n\
    :31005\r\n$40\r\ne908974a33109902f291f6cae103891827e6474e\r\n%0\r\n*4\r\n:10923\r\n\
    :16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:31003\r\n$40\r\n\
    aa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n%0\r\n*4\r\n$9\r\n127.0.0.1\r\n\
    :31006\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n%0\r\n";

/// `CLUSTER SHARDS`, RESP3, from a TLS cluster (`tls-cluster yes`, plain ports 31021-31023, TLS
/// ports 31031-31033), asked over the plain port.
pub(crate) const TLS_SHARDS_RESP3: &[u8] =
    b"*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*1\r\n%8\r\n\
    $2\r\nid\r\n$40\r\nfa94352f816041bb2205ac4a21cece3a1478978d\r\n$4\r\nport\r\n\
    :31022\r\n$8\r\ntls-port\r\n:31032\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\n\
    endpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n%2\r\n$5\r\nslots\r\n\
    *2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*1\r\n%8\r\n$2\r\nid\r\n$40\r\n\
    5870cc9f6d4985bd2f735eab098b4a80e010e365\r\n$4\r\nport\r\n:31021\r\n$8\r\n\
    tls-port\r\n:31031\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n\
    127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\n\
    health\r\n$6\r\nonline\r\n%2\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\n\
    nodes\r\n*1\r\n%8\r\n$2\r\nid\r\n$40\r\n6ff64bd124bb154f2e0f0698617a867f5367b71e\r\n\
    $4\r\nport\r\n:31023\r\n$8\r\ntls-port\r\n:31033\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    $8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

/// `CLUSTER SHARDS`, RESP3, with `cluster-preferred-endpoint-type hostname`: node 31002 announces
/// `node2.example`, the others have no hostname (endpoint `?`).
pub(crate) const HOSTNAME_SHARDS_RESP3: &[u8] =
    b"*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n%7\r\n$2\r\n\
    id\r\n$40\r\n0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n$4\r\nport\r\n:31001\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:70\r\n$6\r\nhealth\r\n$6\r\nonline\r\n%7\r\n\
    $2\r\nid\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n$4\r\nport\r\n\
    :31004\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n\
    $7\r\nreplica\r\n$18\r\nreplication-offset\r\n:70\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%2\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n%7\r\n\
    $2\r\nid\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n$4\r\nport\r\n\
    :31003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:70\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    %7\r\n$2\r\nid\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n$4\r\nport\r\n\
    :31006\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n\
    $7\r\nreplica\r\n$18\r\nreplication-offset\r\n:70\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%2\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n%8\r\n\
    $2\r\nid\r\n$40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n$4\r\nport\r\n\
    :31002\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$13\r\nnode2.example\r\n\
    $8\r\nhostname\r\n$13\r\nnode2.example\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:70\r\n$6\r\nhealth\r\n$6\r\nonline\r\n%7\r\n$2\r\nid\r\n\
    $40\r\ne908974a33109902f291f6cae103891827e6474e\r\n$4\r\nport\r\n:31005\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n$7\r\n\
    replica\r\n$18\r\nreplication-offset\r\n:70\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

/// The same as `CLUSTER SLOTS`, RESP2 (the ip in the metadata array).
pub(crate) const HOSTNAME_SLOTS_RESP2: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$1\r\n?\r\n:31001\r\n$40\r\n\
    0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n$1\r\n?\r\n:31004\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n*2\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n*4\r\n:5461\r\n:10922\r\n*4\r\n$13\r\n\
    node2.example\r\n:31002\r\n$40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n*2\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n*4\r\n$1\r\n?\r\n:31005\r\n$40\r\n\
    e908974a33109902f291f6cae103891827e6474e\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n:10923\r\n:16383\r\n*4\r\n$1\r\n?\r\n:31003\r\n$40\r\n\
    aa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n$1\r\n?\r\n:31006\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n*2\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n";

/// `CLUSTER SHARDS`, RESP3, with `cluster-preferred-endpoint-type unknown-endpoint` (endpoint
/// empty).
pub(crate) const UNKNOWN_SHARDS_RESP3: &[u8] =
    b"*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n%7\r\n$2\r\n\
    id\r\n$40\r\n0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n$4\r\nport\r\n:31001\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\n\
    master\r\n$18\r\nreplication-offset\r\n:122\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    %7\r\n$2\r\nid\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n$4\r\nport\r\n\
    :31004\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n\
    $7\r\nreplica\r\n$18\r\nreplication-offset\r\n:122\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%2\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n%7\r\n\
    $2\r\nid\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n$4\r\nport\r\n\
    :31003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    %7\r\n$2\r\nid\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n$4\r\nport\r\n\
    :31006\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n\
    $7\r\nreplica\r\n$18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%2\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n%8\r\n\
    $2\r\nid\r\n$40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n$4\r\nport\r\n\
    :31002\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$8\r\n\
    hostname\r\n$13\r\nnode2.example\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\nonline\r\n%7\r\n$2\r\nid\r\n\
    $40\r\ne908974a33109902f291f6cae103891827e6474e\r\n$4\r\nport\r\n:31005\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$7\r\nreplica\r\n\
    $18\r\nreplication-offset\r\n:84\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

/// The same as `CLUSTER SLOTS`, RESP2 (endpoint `$-1`).
pub(crate) const UNKNOWN_SLOTS_RESP2: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$-1\r\n:31001\r\n$40\r\n\
    0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n$-1\r\n:31004\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n*2\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n*4\r\n:5461\r\n:10922\r\n*4\r\n$-1\r\n:31002\r\n\
    $40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n*4\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n$8\r\nhostname\r\n$13\r\nnode2.example\r\n*4\r\n$-1\r\n:31005\r\n\
    $40\r\ne908974a33109902f291f6cae103891827e6474e\r\n*2\r\n$2\r\nip\r\n$9\r\n\
    127.0.0.1\r\n*4\r\n:10923\r\n:16383\r\n*4\r\n$-1\r\n:31003\r\n$40\r\n\
    aa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n$-1\r\n:31006\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n*2\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n";

/// The same as `CLUSTER SLOTS`, RESP3 (endpoint `_`).
pub(crate) const UNKNOWN_SLOTS_RESP3: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n_\r\n:31001\r\n$40\r\n\
    0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n%1\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n_\r\n:31004\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n%1\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n*4\r\n:5461\r\n:10922\r\n*4\r\n_\r\n:31002\r\n$40\r\n\
    32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n%2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    $8\r\nhostname\r\n$13\r\nnode2.example\r\n*4\r\n_\r\n:31005\r\n$40\r\n\
    e908974a33109902f291f6cae103891827e6474e\r\n%1\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n:10923\r\n:16383\r\n*4\r\n_\r\n:31003\r\n$40\r\n\
    aa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n%1\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
    *4\r\n_\r\n:31006\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n%1\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n";

/// `CLUSTER SHARDS`, RESP2, after 31003 was shut down and its replica 31006 took over: 31003 is
/// listed as a failed master of a shard without slots.
pub(crate) const FAILOVER_SHARDS_RESP2: &[u8] =
    b"*4\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n\
    id\r\n$40\r\n0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n$4\r\nport\r\n:31001\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:178\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n*14\r\n$2\r\nid\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n\
    $4\r\nport\r\n:31004\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n\
    127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:178\r\n\
    $6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n\
    *14\r\n$2\r\nid\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n$4\r\nport\r\n\
    :31003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:98\r\n$6\r\nhealth\r\n$4\r\n\
    fail\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n*16\r\n\
    $2\r\nid\r\n$40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n$4\r\nport\r\n\
    :31002\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$8\r\n\
    hostname\r\n$13\r\nnode2.example\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:140\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n\
    $40\r\ne908974a33109902f291f6cae103891827e6474e\r\n$4\r\nport\r\n:31005\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n\
    replica\r\n$18\r\nreplication-offset\r\n:140\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    *4\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\n\
    id\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n$4\r\nport\r\n:31006\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:98\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

/// The same as `CLUSTER SLOTS`, RESP2.
pub(crate) const FAILOVER_SLOTS_RESP2: &[u8] =
    b"*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:31001\r\n$40\r\n\
    0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n\
    :31004\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n*0\r\n*4\r\n:5461\r\n\
    :10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:31002\r\n$40\r\n\
    32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n*2\r\n$8\r\nhostname\r\n$13\r\n\
    node2.example\r\n*4\r\n$9\r\n127.0.0.1\r\n:31005\r\n$40\r\n\
    e908974a33109902f291f6cae103891827e6474e\r\n*0\r\n*3\r\n:10923\r\n:16383\r\n*4\r\n\
    $9\r\n127.0.0.1\r\n:31006\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n\
    *0\r\n";

/// `CLUSTER SHARDS`, RESP3, after 31002 was also shut down and its replica 31005 was not allowed
/// to fail over (`cluster-replica-no-failover`): the master of 5461-10922 is `fail`, the cluster
/// is down.
pub(crate) const DOWN_SHARDS_RESP3: &[u8] =
    b"*4\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n%7\r\n$2\r\n\
    id\r\n$40\r\n0784d568d8aefca3c1ffdc3ea156e2c5e32b8eb3\r\n$4\r\nport\r\n:31001\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:206\r\n$6\r\nhealth\r\n$6\r\n\
    online\r\n%7\r\n$2\r\nid\r\n$40\r\n12672dd83921ba9d0ba6ef9386e907abf1c48333\r\n\
    $4\r\nport\r\n:31004\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n\
    127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:206\r\n\
    $6\r\nhealth\r\n$6\r\nonline\r\n%2\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n\
    %7\r\n$2\r\nid\r\n$40\r\naa029cd5ad619bf83e1427c6f1e5d18af1dc9a21\r\n$4\r\nport\r\n\
    :31003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n\
    role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:98\r\n$6\r\nhealth\r\n$4\r\n\
    fail\r\n%2\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n%8\r\n\
    $2\r\nid\r\n$40\r\n32c78a72c18d52521893054f447dd0cbe0cb49ec\r\n$4\r\nport\r\n\
    :31002\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$8\r\n\
    hostname\r\n$13\r\nnode2.example\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n\
    replication-offset\r\n:140\r\n$6\r\nhealth\r\n$4\r\nfail\r\n%7\r\n$2\r\nid\r\n\
    $40\r\ne908974a33109902f291f6cae103891827e6474e\r\n$4\r\nport\r\n:31005\r\n$2\r\n\
    ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n\
    replica\r\n$18\r\nreplication-offset\r\n:140\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
    %2\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%7\r\n$2\r\n\
    id\r\n$40\r\ne77d605d3531a297aaed02afc0b3e572c6989468\r\n$4\r\nport\r\n:31006\r\n\
    $2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n\
    $6\r\nmaster\r\n$18\r\nreplication-offset\r\n:98\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
