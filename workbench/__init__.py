"""The finance exception workbench: canonical ledger, exception queue and screens."""
