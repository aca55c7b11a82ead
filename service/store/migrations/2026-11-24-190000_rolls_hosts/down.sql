DROP TABLE hosts;
DROP TABLE cluster_rolls;
DROP TABLE roll_files;
DROP TABLE rolls;
