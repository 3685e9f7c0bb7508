DROP TABLE tickers;
DROP TABLE tasks;
DROP TABLE queues;
