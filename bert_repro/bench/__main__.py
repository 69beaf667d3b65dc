from bert_repro.bench.cli import main

main()
