"""Pure-Python building blocks, free of Airflow: datasets, validation, training, metrics.

Heavy libraries (pandas, numpy, scikit-learn, mlflow) are imported inside functions so that a DAG
file which reaches these modules at parse time stays light.
"""
