# Bar chart of the benchmark ratios (ours / baseline, medians) written by
# bench/report.py; the black bar across each column is the target ratio, the
# ratio itself is printed at the foot of its column.
#   gnuplot -e "datafile='ratios.dat'; outfile='results.png'" bench/plot.gp
if (!exists("datafile")) datafile = 'bench/ratios.dat'
if (!exists("outfile")) outfile = 'bench/results.png'

set terminal pngcairo size 1200,600 font ",10"
set output outfile
set title "files-api benchmarks: ours / baseline (median of rounds); black bar = target; red = target missed"
set style fill solid 0.8 border -1
set boxwidth 0.6
set ylabel "ratio"
set yrange [0:*]
set grid ytics
set xtics noenhanced
set key off
set bmargin 4
set offsets 0.5, 0.5, 0.5, 0
# status: 1 pass (green), 0 fail (red), 2 reported, no target (grey)
color(s) = s == 1 ? 0x2ca02c : (s == 0 ? 0xd62728 : 0x999999)
plot datafile using 0:2:(color($4)):xtic(1) with boxes lc rgb variable, \
     '' using 0:3:($0-0.35):($0+0.35) with xerrorbars lc rgb "black" lw 3 pt -1, \
     '' using 0:(0):(sprintf("%.2fx", $2)) with labels offset 0,0.8 tc rgb "white" font ",11"
