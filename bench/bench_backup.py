"""Benchmark the backup / verify functions against the plan's script, on realistic data.

    .venv/bin/python bench/bench_backup.py --size-mb 1024     # ~1 GB database
    .venv/bin/python bench/bench_backup.py --size-mb 100
    .venv/bin/python bench/bench_backup.py --size-mb 1024 --store azure   # Azurite, Azure SDK upload

Builds a throwaway PostgreSQL 15 cluster (drill.local.PgCluster) holding the platform's
tables filled with poorly compressible rows (random bytea "images", base64 noise mixed
with words in posts and comments, structured columns), starts moto's S3 (drill.local.MotoServer),
and measures, each in its own process:

  pg_dump -Fc > /dev/null                 the tool alone (zlib, the default compression)
  plan's two-step script                  pg_dump -Fc -f FILE, then upload FILE (boto3 managed upload;
                                          --store azure: Azurite and the Azure SDK's upload_blob)
  python -m lambdas backup                pg_dump -Fc -Z0 | zstd (threads) | SHA-256 | multipart upload
  pg_restore of the local FILE            plain restore (--single-transaction, no -j), of the
                                          plan's gzip file and of an uncompressed -Z0 file
  python -m lambdas verify                streamed download + SHA-256 + zstd -d | pg_restore, then checks

Prints the figures and writes them as JSON to bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drill.azurite import AzuriteServer  # noqa: E402
from drill.local import PG_BIN, MotoServer, PgCluster  # noqa: E402
from drplan.handover import BackupPolicy  # noqa: E402
from drplan.retention import RETENTION, Tier  # noqa: E402

DB = "postoucancer"
BUCKET = "pouc-bench-backups"
REGION = "eu-west-3"
PY = sys.executable
MiB = 1 << 20

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, display_name text NOT NULL, bio text,
                    locale text, created_at timestamptz NOT NULL);
CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint NOT NULL, title text NOT NULL, body text NOT NULL,
                    tags text[], published boolean NOT NULL, likes int NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE comments (id bigserial PRIMARY KEY, post_id bigint NOT NULL, user_id bigint NOT NULL,
                       body text NOT NULL, meta jsonb, created_at timestamptz NOT NULL);
CREATE TABLE media (id bigserial PRIMARY KEY, post_id bigint NOT NULL, content_type text NOT NULL,
                    width int, height int, data bytea NOT NULL, sha256 bytea NOT NULL);
"""

# One batch: ~1000 posts. Roughly: media (random bytes) 45 %, posts 35 %, comments 15 %, users 5 %.
BATCH = """
WITH u AS (
  INSERT INTO users (email, display_name, bio, locale, created_at)
  SELECT 'u' || g || '-' || substr(md5(random()::text), 1, 8) || '@example.org',
         (ARRAY['Zoé','Åsa','Jean-Luc','Мария','李','Nadia','Karim','Inès'])[1 + (random() * 7)::int],
         encode(gen_random_bytes(120), 'base64'), (ARRAY['fr','en','es','de'])[1 + (random() * 3)::int],
         now() - random() * interval '900 days'
  FROM generate_series(1, 50) g RETURNING id
), p AS (
  INSERT INTO posts (user_id, title, body, tags, published, likes, created_at)
  SELECT (SELECT min(id) FROM u) + (random() * 49)::int,
         'Post ' || md5(random()::text),
         (SELECT string_agg((ARRAY['soin','espoir','chimio','fatigue','famille','courage','merci','rendez-vous',
                                   'résultats','oncologue','traitement','ensemble'])[1 + (random() * 11)::int], ' ')
          FROM generate_series(1, 40 + g % 3)) || ' ' || encode(gen_random_bytes(700), 'base64'),
         ARRAY['t' || (random() * 50)::int, 't' || (random() * 50)::int],
         random() > 0.1, (random() * 500)::int, now() - random() * interval '900 days'
  FROM generate_series(1, 1000) g RETURNING id, user_id
), c AS (
  INSERT INTO comments (post_id, user_id, body, meta, created_at)
  SELECT p.id, p.user_id, encode(gen_random_bytes(90 + (random() * 60)::int), 'base64'),
         CASE WHEN random() < 0.4 THEN jsonb_build_object('likes', (random() * 40)::int,
                                                        'edited', random() < 0.2) END,
         now() - random() * interval '900 days'
  FROM p, generate_series(1, 3) RETURNING 1
)
INSERT INTO media (post_id, content_type, width, height, data, sha256)
SELECT p.id, 'image/jpeg', 800, 600, b.data, sha256(b.data)
FROM (SELECT id FROM p ORDER BY random() LIMIT 100) p,
     LATERAL (SELECT string_agg(gen_random_bytes(1024), ''::bytea) AS data
              FROM generate_series(1, 8 + (p.id % 3)::int)) b;
"""


def db_size(conn) -> int:
    return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def fill(cluster: PgCluster, size_mb: int) -> int:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(cluster.dsn(DB), autocommit=True) as conn:
        conn.execute(SCHEMA)
        t0 = time.monotonic()
        while (size := db_size(conn)) < size_mb * MiB:
            conn.execute(BATCH)
        conn.execute("VACUUM ANALYZE")
        print(f"filled {size / MiB:.0f} MiB in {time.monotonic() - t0:.0f} s", flush=True)
        return db_size(conn)


def timed(cmd, env=None, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, check=True, **kw)
    return time.monotonic() - t0, proc


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


UPLOAD = """
import sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3")
s3.upload_file(sys.argv[1], sys.argv[2], sys.argv[3],
               ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": sys.argv[4]},
               Config=TransferConfig(multipart_chunksize=16 * 1024 * 1024))
"""


UPLOAD_AZURE = """
import os, sys
from azure.storage.blob import BlobServiceClient
svc = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
with open(sys.argv[1], "rb") as f:
    svc.get_blob_client(sys.argv[2], sys.argv[3]).upload_blob(f, encryption_scope=sys.argv[4], max_concurrency=2)
"""


def one_round(rep, cluster, work, pg_env, aws_env, benv, key, args) -> dict:
    results: dict = {}
    # 1. the tool alone
    with open(os.devnull, "wb") as null:
        t, _ = timed([str(PG_BIN / "pg_dump"), "-Fc"], env=pg_env, stdout=null)
        results["pg_dump_Fc_devnull_s"] = round(t, 1)
        t, _ = timed([str(PG_BIN / "pg_dump"), "-Fc", "-Z0"], env=pg_env, stdout=null)
        results["pg_dump_Fc_Z0_devnull_s"] = round(t, 1)

    # 2. the plan's two-step script: dump to a file, then upload it
    dump = work / "plan.dump"
    t_dump, _ = timed([str(PG_BIN / "pg_dump"), "-Fc", "-f", str(dump)], env=pg_env)
    upload = UPLOAD_AZURE if args.store == "azure" else UPLOAD
    t_up, _ = timed([PY, "-c", upload, str(dump), BUCKET, f"plan/{rep}/backup.dump", key], env=aws_env)
    results.update(two_step_dump_s=round(t_dump, 1), two_step_upload_s=round(t_up, 1),
                   two_step_total_s=round(t_dump + t_up, 1), gzip_dump_mib=round(dump.stat().st_size / MiB, 1))

    # 3. our backup, as the CronJob runs it
    benv = {**benv, "BACKUP_PREFIX": f"round{rep}"}
    t, proc = timed([PY, "-m", "lambdas", "backup"], env=benv, capture_output=True, text=True, cwd=ROOT)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    m = out["manifest"]
    results.update(backup_s=round(t, 1), backup_object_mib=round(m["stored_bytes"] / MiB, 1),
                   backup_raw_mib=round(m["raw_bytes"] / MiB, 1), backup_peak_rss_mb=out["peak_rss_mb"],
                   backup_compression=m["compression"])

    # 4. plain pg_restore of the local file (no -j: the streamed restore cannot use it either)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE plain_restore TEMPLATE template0")
    t, _ = timed([str(PG_BIN / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                  "--single-transaction", "-d", "plain_restore", str(dump)], env=pg_env)
    results["pg_restore_local_s"] = round(t, 1)
    # ... and of an uncompressed (-Z0) local file: pg_restore without zlib's cost
    dump_z0 = work / "plain-z0.dump"
    timed([str(PG_BIN / "pg_dump"), "-Fc", "-Z0", "-f", str(dump_z0)], env=pg_env)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE plain_restore")
        conn.execute("CREATE DATABASE plain_restore TEMPLATE template0")
    t, _ = timed([str(PG_BIN / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                  "--single-transaction", "-d", "plain_restore", str(dump_z0)], env=pg_env)
    results["pg_restore_local_Z0_s"] = round(t, 1)
    dump_z0.unlink()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE plain_restore")

    # 5. our verify (download + checksum + decompress + restore + counts + drop)
    t, proc = timed([PY, "-m", "lambdas", "verify", "--no-record", "--probe", "posts=SELECT count(*) FROM posts"],
                    env=benv, capture_output=True, text=True, cwd=ROOT)
    v = json.loads(proc.stdout.strip().splitlines()[-1])
    results.update(verify_total_s=round(t, 1), verify_restore_s=v["restore_seconds"],
                   verify_peak_rss_mb=v["peak_rss_mb"])

    # 6. other zstd levels (backup only), to justify the default
    for level in args.compare_levels:
        e = {**benv, "BACKUP_COMPRESSION_LEVEL": str(level), "BACKUP_PREFIX": f"round{rep}-level{level}"}
        t, proc = timed([PY, "-m", "lambdas", "backup"], env=e, capture_output=True, text=True, cwd=ROOT)
        o = json.loads(proc.stdout.strip().splitlines()[-1])
        results.setdefault("levels", {})[f"zstd-{level}"] = {
            "backup_s": round(t, 1), "object_mib": round(o["manifest"]["stored_bytes"] / MiB, 1),
            "peak_rss_mb": o["peak_rss_mb"]}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="database size to build (pg_database_size)")
    ap.add_argument("--level", type=int, default=3, help="zstd level for the backup")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="zstd threads for the backup")
    ap.add_argument("--compare-levels", type=lambda v: [int(x) for x in v.split(",") if x], default=[1, 2],
                    help="other zstd levels to time (backup only), comma-separated; '' for none")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; each figure is the best round (shared machine)")
    ap.add_argument("--workdir", default=None, help="where the cluster and dump files go (default: a temp dir)")
    ap.add_argument("--store", choices=("s3", "azure"), default="s3", help="moto's S3 or Azurite's Blob Storage")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="pouc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"size_mb_requested": args.size_mb, "cores": os.cpu_count(), "store": args.store}
    cluster = PgCluster.create(settings={"shared_buffers": "'512MB'", "max_wal_size": "'8GB'",
                                         "synchronous_commit": "off", "wal_level": "minimal",
                                         "max_wal_senders": "0"})
    moto = MotoServer() if args.store == "s3" else AzuriteServer()
    try:
        cluster.start()
        size = fill(cluster, args.size_mb)
        results["database_mib"] = round(size / MiB, 1)
        pg_env = {**os.environ, **cluster.env(), "PGDATABASE": DB}
        moto.start()
        if args.store == "azure":
            from azure.storage.blob import BlobServiceClient

            store_env = {"BACKUP_STORE": "azure", "AZURE_STORAGE_CONNECTION_STRING": moto.connection_string()}
            BlobServiceClient.from_connection_string(moto.connection_string()).create_container(BUCKET)
            key = "pouc-backups"  # an encryption scope name (Azurite: accepted, no effect)
        else:
            store_env = moto.client_env(REGION)
        aws_env = {**pg_env, **store_env}
        os.environ.update(store_env)
        if args.store == "s3":
            session = boto3.session.Session()
            s3 = session.client("s3")
            kms = session.client("kms")
            key = kms.create_key()["KeyMetadata"]["Arn"]
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION},
                             ObjectLockEnabledForBucket=True)

        benv = {**aws_env, "BACKUP_DATABASE": DB, "BACKUP_BUCKET": BUCKET, "BACKUP_KMS_KEY_ID": key,
                "BACKUP_POLICY": BackupPolicy(Tier.PROD, RETENTION[Tier.PROD]).to_json(),
                "BACKUP_COMPRESSION_LEVEL": str(args.level), "BACKUP_COMPRESSION_THREADS": str(args.threads),
                "PYTHONPATH": str(ROOT), "POWERTOOLS_METRICS_NAMESPACE": "bench"}
        rounds = []
        for rep in range(args.repeat):
            load_before = os.getloadavg()[0]
            r = one_round(rep, cluster, work, pg_env, aws_env, benv, key, args)
            r["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            print(json.dumps({"round": rep, **r}), flush=True)
            rounds.append(r)
        results["rounds"] = rounds
        # The machine is shared: per figure, the best (least disturbed) round.
        for k in rounds[0]:
            if k.endswith("_s"):
                results[k] = min(r[k] for r in rounds)
            elif k.endswith("rss_mb"):
                results[k] = max(r[k] for r in rounds)
            elif k != "levels":
                results[k] = rounds[-1][k]
        for level in args.compare_levels:
            name = f"zstd-{level}"
            results.setdefault("levels", {})[name] = {
                "backup_s": min(r["levels"][name]["backup_s"] for r in rounds),
                "object_mib": rounds[-1]["levels"][name]["object_mib"],
                "peak_rss_mb": max(r["levels"][name]["peak_rss_mb"] for r in rounds)}
    finally:
        moto.stop()
        cluster.destroy()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    raw = results["database_mib"]
    results["throughput_mib_s"] = {
        "pg_dump_Fc_devnull": round(raw / results["pg_dump_Fc_devnull_s"], 1),
        "pg_dump_Fc_Z0_devnull": round(raw / results["pg_dump_Fc_Z0_devnull_s"], 1),
        "two_step_script": round(raw / results["two_step_total_s"], 1),
        "lambdas_backup": round(raw / results["backup_s"], 1),
    }
    results["targets"] = {
        "backup_vs_two_step_x": round(results["two_step_total_s"] / results["backup_s"], 2),
        "object_vs_gzip_dump": round(results["backup_object_mib"] / results["gzip_dump_mib"], 3),
        "backup_rss_mb": results["backup_peak_rss_mb"],
        "verify_restore_vs_plain_x": round(results["verify_restore_s"] / results["pg_restore_local_s"], 2),
        "verify_total_vs_plain_x": round(results["verify_total_s"] / results["pg_restore_local_s"], 2),
        "verify_total_vs_plain_Z0_x": round(results["verify_total_s"] / results["pg_restore_local_Z0_s"], 2),
    }
    print(json.dumps(results, indent=2))
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    name = f"backup-{args.store}-{args.size_mb}mb-{time.strftime('%Y%m%dT%H%M%S')}.json"
    (out_dir / name).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
