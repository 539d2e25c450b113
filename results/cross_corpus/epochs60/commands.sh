# round 13's commands (the runs' output is in run.log and loco_seeds34.log)
# seeds 1 and 2, 10 pooled folds then 4 leave-one-corpus-out runs:
cd /work/main && source .venv/bin/activate
common="--manifest results/release/pooled.csv --recipe default=search_spaces/two_corpus.yaml --set optim.epochs=60 --set data.crops_per_clip=0 --set optim.select=last --folds 5 --jobs 2 --memory-format channels_last"
echo "pooled start $(date -u +%T)"
/usr/bin/time -f "pooled wall %e s" python scripts/cross_corpus.py $common --seeds 1 2 --no-loco --out results/cross_corpus/epochs60/pooled
echo "loco start $(date -u +%T)"
/usr/bin/time -f "loco wall %e s" python scripts/cross_corpus.py $common --seeds 1 2 --no-pooled --out results/cross_corpus/epochs60/loco
echo "done $(date -u +%T)"

# seeds 3 and 4, leave-one-corpus-out, 60 epochs and the 40-epoch control:
cd /work/main && source .venv/bin/activate
base="--manifest results/release/pooled.csv --recipe default=search_spaces/two_corpus.yaml --set data.crops_per_clip=0 --set optim.select=last --folds 5 --jobs 2 --memory-format channels_last --seeds 3 4 --no-pooled"
echo "epochs60 loco seeds 3 4 start $(date -u +%T)"
/usr/bin/time -f "epochs60 loco seeds 3 4 wall %e s" python scripts/cross_corpus.py $base --set optim.epochs=60 --out results/cross_corpus/epochs60/loco_seeds34
echo "epochs40 loco seeds 3 4 start $(date -u +%T)"
/usr/bin/time -f "epochs40 loco seeds 3 4 wall %e s" python scripts/cross_corpus.py $base --set optim.epochs=40 --out results/cross_corpus/epochs60/control_loco_seeds34
echo "done $(date -u +%T)"

# seeds 3 and 4, pooled (10 more paired folds), 60 epochs and the 40-epoch control
# (2026-12-05; output and times in pooled_seeds34.log):
cd /work/main && source .venv/bin/activate
base="--manifest results/release/pooled.csv --recipe default=search_spaces/two_corpus.yaml --set data.crops_per_clip=0 --set optim.select=last --folds 5 --jobs 2 --memory-format channels_last --seeds 3 4 --no-loco"
echo "epochs60 pooled seeds 3 4 start $(date -u +%T)"
/usr/bin/time -f "epochs60 pooled seeds 3 4 wall %e s" python scripts/cross_corpus.py $base --set optim.epochs=60 --out results/cross_corpus/epochs60/pooled_seeds34
echo "epochs40 pooled seeds 3 4 start $(date -u +%T)"
/usr/bin/time -f "epochs40 pooled seeds 3 4 wall %e s" python scripts/cross_corpus.py $base --set optim.epochs=40 --out results/cross_corpus/epochs60/control_pooled_seeds34
echo "done $(date -u +%T)"
